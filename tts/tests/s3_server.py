"""A real S3 API on loopback for tests: moto in server mode (HTTP on 127.0.0.1, its own port),
reached by boto3 over the network exactly like MinIO or COS would be."""

from __future__ import annotations

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"


class S3Server:
    def __enter__(self) -> S3Server:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        return self

    @property
    def endpoint_url(self) -> str:
        host, port = self.server.get_host_and_port()
        return f"http://{host}:{port}"

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def settings(self, bucket: str, *, delivery: str = "redirect") -> dict:
        """Overrides equal to what cs_platform/settings/storage.py builds from the env."""
        from django.conf import settings

        return {
            "STORAGE_BACKEND": "s3",
            "AUDIO_DELIVERY": delivery,
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_S3_ADDRESSING_STYLE": "path",
            "STORAGES": {
                **settings.STORAGES,
                "default": {
                    "BACKEND": "storages.backends.s3.S3Storage",
                    "OPTIONS": {
                        "bucket_name": bucket,
                        "endpoint_url": self.endpoint_url,
                        "region_name": REGION,
                        "access_key": ACCESS_KEY,
                        "secret_key": SECRET_KEY,
                        "addressing_style": "path",
                        "signature_version": "s3v4",
                        "querystring_auth": True,
                        "querystring_expire": settings.AWS_QUERYSTRING_EXPIRE,
                        "default_acl": None,
                        "file_overwrite": True,
                    },
                },
            },
        }

    def __exit__(self, *exc) -> None:
        self.server.stop()
