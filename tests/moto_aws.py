"""moto's server (the AWS API as AWS documents it, CloudWatch Logs and S3 among them) on a
free loopback port, and a boto3 client of it to read back what edgeship wrote."""
import socket
import urllib.request

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-west-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDMOTO", "AWS_SECRET_ACCESS_KEY": "moto-secret"}


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Moto:
    def __init__(self):
        self.port = _free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.url = "http://127.0.0.1:%d" % self.port
        # moto keeps its state per process: each test starts from an empty account
        urllib.request.urlopen(urllib.request.Request(self.url + "/moto-api/reset",
                                                      method="POST"), timeout=10).read()

    def client(self, service):
        return boto3.client(service, region_name=REGION, endpoint_url=self.url,
                            aws_access_key_id="AKIDMOTO", aws_secret_access_key="moto-secret")

    def stop(self):
        self.server.stop()


@pytest.fixture
def moto():
    """A moto server for one test (a test module uses it with ``from moto_aws import moto``)."""
    server = Moto()
    yield server
    server.stop()
