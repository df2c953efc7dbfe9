"""gunicorn settings for `make run` and deployments (the Procfile's `web`); the values come from
dlstudio/settings.py, the one place the environment is read."""
from dlstudio import settings

bind = settings.BIND
worker_class = "gthread"
workers = settings.WEB_WORKERS
threads = settings.WEB_THREADS
timeout = 120
graceful_timeout = 10
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# gunicorn's control socket lives in the home directory and would clash between two installations.
control_socket_disable = True
