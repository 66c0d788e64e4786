#!/usr/bin/python3
# The cloud's credential endpoints for the integration tests, in the request
# and answer formats AWS documents, on one loopback port (stdlib only):
#   IMDSv2    PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds),
#             GET /latest/meta-data/iam/security-credentials/[ROLE]
#             (X-aws-ec2-metadata-token), JSON credentials
#   STS       POST / or GET /?Action=AssumeRoleWithWebIdentity&RoleArn&
#             RoleSessionName&WebIdentityToken&Version=2011-06-15, XML
#   container GET /ecs/... (AWS_CONTAINER_CREDENTIALS_FULL_URI), checking
#             Authorization when --ecs-auth is given
# It hands out the real test account's key id and secret with a session
# token of its own that expires after --ttl seconds.  Every other request
# is an S3 request: it is passed to the real S3 server (--upstream PORT)
# unchanged, after checking its session token as AWS does (an expired one
# is answered 400 ExpiredToken), and logged (--log, one JSON object a
# line: method, path, the x-amz- headers, the signed header names).
#   GET /_ctl?KEY=VALUE  changes a setting while it runs: ttl, role ("" =
#   no role attached), sts_error (CODE), put_error (STATUS:CODE:MESSAGE,
#   answered to every PUT instead of passing it on), expire_now (every
#   issued token expires), delay (seconds before passing a request on)
# The secret and tokens never go into the log; the port is written to
# --port-file once listening.
import argparse
import http.client
import json
import os
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--port-file", required=True)
p.add_argument("--log", required=True)
p.add_argument("--access", required=True)
p.add_argument("--secret", required=True)
p.add_argument("--upstream", type=int, default=0)
p.add_argument("--ttl", type=float, default=3600)
p.add_argument("--role", default="walarchive-role")
p.add_argument("--role-arn", default="arn:aws:iam::123456789012:role/walarchive")
p.add_argument("--web-token", default="")
p.add_argument("--ecs-auth", default="")
args = p.parse_args()

state = {"ttl": args.ttl, "role": args.role, "sts_error": "", "put_error": "", "delay": 0.0}
issued = {}  # session token -> expiry (epoch seconds)
imds_tokens = {}  # IMDSv2 session token -> expiry
counts = {"imds": 0, "sts": 0, "ecs": 0, "expired": 0}
lock = threading.Lock()


def log(event):
    event["t"] = round(time.time(), 3)
    with lock, open(args.log, "a") as f:
        f.write(json.dumps(event) + "\n")


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def issue(kind):
    token = "FAKE" + secrets.token_hex(24)
    # a whole second: the Expiration format has no fraction
    expiry = int(time.time() + state["ttl"])
    with lock:
        issued[token] = expiry
        counts[kind] += 1
    log({"issue": kind, "token": token[:12], "expires": expiry})
    return token, expiry


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, body=b"", ctype="text/plain", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def s3_error(self, status, code, message):
        self.reply(status, '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                   '<Message>%s</Message><RequestId>fake</RequestId></Error>' % (code, message),
                   "application/xml")

    # ---- IMDSv2 ----
    def imds(self, path):
        if path == "/latest/api/token":
            if self.command != "PUT":
                return self.reply(405)
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "missing or invalid ttl")
            token = secrets.token_urlsafe(32)
            imds_tokens[token] = time.time() + int(ttl)
            log({"imds": "token"})
            return self.reply(200, token, headers=[("X-aws-ec2-metadata-token-ttl-seconds", ttl)])
        token = self.headers.get("X-aws-ec2-metadata-token", "")
        if imds_tokens.get(token, 0) < time.time():
            log({"imds": "refused", "path": path})
            return self.reply(401, "")
        base = "/latest/meta-data/iam/security-credentials/"
        if path == base:
            if not state["role"]:
                return self.reply(404, "")
            return self.reply(200, state["role"])
        if path == base + state["role"] and state["role"]:
            token, expiry = issue("imds")
            return self.reply(200, json.dumps({
                "Code": "Success", "LastUpdated": iso(time.time()), "Type": "AWS-HMAC",
                "AccessKeyId": args.access, "SecretAccessKey": args.secret, "Token": token,
                "Expiration": iso(expiry)}, indent=2), "text/plain")
        return self.reply(404, "")

    # ---- STS ----
    def sts(self, form):
        def error(status, code, message):
            self.reply(status, '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                       '<Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>'
                       '<RequestId>fake</RequestId></ErrorResponse>' % (code, message), "text/xml")
        get = lambda k: form.get(k, [""])[0]
        log({"sts": get("Action"), "role": get("RoleArn"), "session": get("RoleSessionName")})
        if get("Version") != "2011-06-15":
            return error(400, "InvalidParameterValue", "unknown Version")
        if state["sts_error"]:
            return error(403 if "Denied" in state["sts_error"] else 400, state["sts_error"],
                         "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        if get("RoleArn") != args.role_arn:
            return error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        if not get("RoleSessionName"):
            return error(400, "ValidationError", "RoleSessionName is required")
        if get("WebIdentityToken") != args.web_token:
            return error(400, "InvalidIdentityToken", "Incorrect token audience")
        token, expiry = issue("sts")
        self.reply(200, """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:db:walarchive</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>%s/%s</Arn>
      <AssumedRoleId>AROAFAKE:%s</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>%s</SessionToken>
      <SecretAccessKey>%s</SecretAccessKey>
      <Expiration>%s</Expiration>
      <AccessKeyId>%s</AccessKeyId>
    </Credentials>
    <Audience>sts.amazonaws.com</Audience>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
""" % (args.role_arn, get("RoleSessionName"), get("RoleSessionName"), token, args.secret,
       iso(expiry), args.access), "text/xml")

    # ---- container credentials ----
    def ecs(self):
        if args.ecs_auth and self.headers.get("Authorization", "") != args.ecs_auth:
            log({"ecs": "refused"})
            return self.reply(401, json.dumps({"Code": "Unauthorized"}), "application/json")
        token, expiry = issue("ecs")
        self.reply(200, json.dumps({
            "RoleArn": args.role_arn, "AccessKeyId": args.access, "SecretAccessKey": args.secret,
            "Token": token, "Expiration": iso(expiry)}), "application/json")

    # ---- S3, passed on ----
    def s3(self):
        data = self.body()
        hdrs = {k.lower(): v for k, v in self.headers.items()}
        token = hdrs.get("x-amz-security-token", "")
        auth = hdrs.get("authorization", "")
        signed = auth.split("SignedHeaders=")[1].split(",")[0] if "SignedHeaders=" in auth else ""
        event = {"s3": self.command, "path": self.path, "signed": signed,
                 "amz": {k: v for k, v in hdrs.items()
                         if k.startswith("x-amz-") and k != "x-amz-security-token"},
                 "token": token[:12]}
        expiry = issued.get(token)
        if token.startswith("FAKE") and expiry is None:
            event["answer"] = "InvalidToken"
            log(event)
            return self.s3_error(403, "InvalidToken", "The provided token is malformed or otherwise invalid.")
        if expiry is not None and time.time() >= expiry:
            with lock:
                counts["expired"] += 1
            event["answer"] = "ExpiredToken"
            log(event)
            return self.s3_error(400, "ExpiredToken", "The provided token has expired.")
        if self.command == "PUT" and state["put_error"] and self.path.count("/") > 1:
            status, code, message = state["put_error"].split(":", 2)
            event["answer"] = code
            log(event)
            return self.s3_error(int(status), code, message)
        log(event)
        if state["delay"]:
            time.sleep(state["delay"])
        conn = http.client.HTTPConnection("127.0.0.1", args.upstream, timeout=60)
        fwd = {k: v for k, v in self.headers.items()
               if k.lower() not in ("expect", "transfer-encoding", "connection", "content-length")}
        fwd["Content-Length"] = str(len(data))
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in fwd.items():
            conn.putheader(k, v)
        conn.endheaders(data)
        resp = conn.getresponse()
        body = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        length = resp.getheader("Content-Length") if self.command == "HEAD" else str(len(body))
        self.send_header("Content-Length", length or "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        conn.close()

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/latest/"):
            return self.imds(url.path)
        if url.path.startswith("/ecs/"):
            return self.ecs()
        if url.path == "/_ctl":
            for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
                if k == "expire_now":
                    with lock:
                        for t in issued:
                            issued[t] = time.time() - 1
                elif k in ("ttl", "delay"):
                    state[k] = float(v)
                else:
                    state[k] = v
            return self.reply(200, json.dumps(counts))
        if url.path == "/" and self.command in ("GET", "POST") and (
                "Action=" in url.query or self.command == "POST"):
            form = urllib.parse.parse_qs(url.query)
            if self.command == "POST":
                form.update(urllib.parse.parse_qs(self.body().decode()))
            return self.sts(form)
        return self.s3()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = route


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
server.serve_forever()
