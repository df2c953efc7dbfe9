"""gunicorn settings for `make run` and deployments (the Procfile's `web`)."""
import os

bind = os.environ.get("DLSTUDIO_BIND", "").strip() or "127.0.0.1:8000"
# Threads rather than many processes: each process holds its own cache of loaded models.
worker_class = "gthread"
workers = int(os.environ.get("DLSTUDIO_WEB_WORKERS", "2"))
threads = int(os.environ.get("DLSTUDIO_WEB_THREADS", "4"))
timeout = 120
graceful_timeout = 10
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# gunicorn's control socket lives in the home directory and would clash between two installations.
control_socket_disable = True
