#!/usr/bin/python3
# Reference S3 client for the integration tests, built on Debian's
# python3-botocore (not on walarchive's code), so that a test's setup and its
# checks do not depend on the code under test.
#   s3ref.py mb BUCKET            create a bucket
#   s3ref.py keys BUCKET [PREFIX] print every key under PREFIX, one a line
#   s3ref.py put BUCKET KEY FILE  upload FILE
# Environment: S3REF_ENDPOINT (http://127.0.0.1:PORT), AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, S3REF_REGION (default us-east-1).
import os
import sys

import botocore.session
from botocore.config import Config

session = botocore.session.get_session()
client = session.create_client(
    "s3", endpoint_url=os.environ["S3REF_ENDPOINT"],
    region_name=os.environ.get("S3REF_REGION", "us-east-1"),
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

cmd = sys.argv[1]
if cmd == "mb":
    client.create_bucket(Bucket=sys.argv[2])
elif cmd == "keys":
    prefix = sys.argv[3] if len(sys.argv) > 3 else ""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2], Prefix=prefix):
        for obj in page.get("Contents", []):
            print(obj["Key"])
elif cmd == "put":
    with open(sys.argv[4], "rb") as f:
        client.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=f)
else:
    sys.exit("s3ref.py: unknown command " + cmd)
