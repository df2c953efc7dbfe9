"""A real S3 API in a separate process on 127.0.0.1 for the tests and bench/storage.py: moto's standalone
server, which the project reaches only as any S3-compatible endpoint (AWS_ENDPOINT_URL and keys); and Azurite's
Blob service, the same for `azure://` (AZURE_CONNECTION_STRING)."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from .services import free_port, wait_until

KEYS = {"AWS_ACCESS_KEY_ID": "dlstudio-test", "AWS_SECRET_ACCESS_KEY": "dlstudio-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1"}


class S3Server:
    def __init__(self, directory: Path, *, check_keys: bool = False):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.directory, self.check_keys = directory, check_keys
        self.proc: subprocess.Popen | None = None

    def start(self) -> "S3Server":
        self.directory.mkdir(parents=True, exist_ok=True)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.directory), "MOTO_CALL_RESET_API": "false"}
        if self.check_keys:  # every request's keys checked from the first: only keys made in its IAM pass
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     env=env, stdout=open(self.directory / "s3.log", "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"the S3 server exited: {(self.directory / 's3.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/", timeout=1):
                    return True
            except OSError as exc:  # an HTTP error is an answer too
                return hasattr(exc, "code")

        wait_until(answers, timeout=60, message="the S3 server to answer")
        return self

    def env(self, bucket: str, prefix: str = "dlstudio") -> dict:
        """The settings of a machine that keeps its files in `bucket`."""
        return {"DLSTUDIO_STORAGE_URL": f"s3://{bucket}/{prefix}", "AWS_ENDPOINT_URL": self.endpoint, **KEYS}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"])

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# Azurite's fixed development account (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    """Azurite's Blob service (`npm install -g azurite`) as a separate process on 127.0.0.1."""

    COMMAND = "azurite-blob"

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.connection_string = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                                  f"AccountKey={AZURITE_KEY};"
                                  f"BlobEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};")
        self.proc: subprocess.Popen | None = None

    @classmethod
    def available(cls) -> bool:
        return shutil.which(cls.COMMAND) is not None

    def start(self) -> "Azurite":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.COMMAND, "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location",
             str(self.directory), "--skipApiVersionCheck", "--loose"],
            stdout=open(self.directory / "azurite.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"azurite exited: {(self.directory / 'azurite.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}?comp=list", timeout=1):
                    return True
            except OSError as exc:  # an HTTP error (unauthenticated) is an answer too
                return hasattr(exc, "code")

        wait_until(answers, timeout=60, message="azurite to answer")
        return self

    def env(self, container: str, prefix: str = "dlstudio") -> dict:
        return {"DLSTUDIO_STORAGE_URL": f"azure://{container}/{prefix}",
                "AZURE_CONNECTION_STRING": self.connection_string}

    def client(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, name: str) -> str:
        self.client().create_container(name)
        return name

    def names(self, container: str) -> list[str]:
        return [blob.name for blob in self.client().get_container_client(container).list_blobs()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
