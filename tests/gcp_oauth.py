"""A stand-in for Google's OAuth2 token endpoint (service-account JWT bearer grant, as
https://developers.google.com/identity/protocols/oauth2/service-account documents it) on
loopback: it verifies each assertion's RS256 signature with the public key of a key pair
made for the test, its ``iss``, ``aud`` (the token URI), ``scope`` and ``exp``/``iat``, and
answers an access token (``400 invalid_grant`` otherwise), and the credentials file that
names it as ``token_uri``."""
import json
import time
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from http_receiver import Receiver, response

EMAIL = "edge-writer@test-project.iam.gserviceaccount.com"
PROJECT = "test-project"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class TokenEndpoint:
    def __init__(self, scope, key=None, lifetime=3599):
        self.key = key or new_key()
        self.scope = scope
        self.lifetime = lifetime
        self.issued = []     # the access tokens given, in order
        self.refused = []    # why each refused request was refused
        self.receiver = Receiver(self._answer)
        self.uri = "http://127.0.0.1:%d/token" % self.receiver.port

    def _answer(self, request, index):
        form = parse_qs(request.body.decode())
        try:
            if request.header("Content-Type") != "application/x-www-form-urlencoded":
                raise ValueError("content type %s" % request.header("Content-Type"))
            if form["grant_type"] != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                raise ValueError("grant_type %s" % form["grant_type"])
            claims = jwt.decode(form["assertion"][0], self.key.public_key(),
                                algorithms=["RS256"], audience=self.uri, issuer=EMAIL,
                                options={"require": ["exp", "iat"]})
            if claims["scope"] != self.scope or claims["exp"] - claims["iat"] > 3600 \
                    or claims["iat"] > time.time() + 60:
                raise ValueError("claims %s" % claims)
        except (KeyError, ValueError, jwt.PyJWTError) as exc:
            self.refused.append(str(exc))
            return response(400, b'{"error":"invalid_grant","error_description":"Invalid '
                                 b'JWT Signature."}')
        token = "ya29.test-token-%d" % len(self.issued)
        self.issued.append(token)
        return response(200, json.dumps({"access_token": token, "expires_in": self.lifetime,
                                         "token_type": "Bearer"}))

    def credentials(self, path, key=None, **fields):
        """Write a service account JSON file naming this endpoint, signed by ``key`` (this
        endpoint's own by default)."""
        doc = {"type": "service_account", "project_id": PROJECT,
               "private_key_id": "0123456789abcdef", "private_key": pem(key or self.key),
               "client_email": EMAIL, "client_id": "1234567890",
               "auth_uri": "https://accounts.google.com/o/oauth2/auth",
               "token_uri": self.uri}
        doc.update(fields)
        path.write_text(json.dumps(doc, indent=2))
        return str(path)

    def close(self):
        self.receiver.close()
