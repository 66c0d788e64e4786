#!/usr/bin/python3
# Reference Azure Blob client for the integration tests, built on Debian's
# python3-azure (azure-storage-blob, not on walarchive's code), so that a
# test's setup and its checks do not depend on the code under test.
#   azref.py mb CONTAINER               create a container
#   azref.py keys CONTAINER [PREFIX]    print every blob name under PREFIX
#   azref.py get CONTAINER NAME FILE    download a blob into FILE
#   azref.py put CONTAINER NAME FILE    upload FILE as a block blob
#   azref.py sas CONTAINER [HOURS]      print a container SAS (read, add,
#                                       create, write, delete, list)
#   azref.py props CONTAINER NAME       print "blob_type content_md5(hex)"
# Environment: AZREF_ENDPOINT (http://127.0.0.1:PORT/ACCOUNT), AZREF_ACCOUNT,
# AZREF_KEY.
import datetime
import os
import sys

from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

account = os.environ["AZREF_ACCOUNT"]
key = os.environ["AZREF_KEY"]
svc = BlobServiceClient(account_url=os.environ["AZREF_ENDPOINT"],
                        credential={"account_name": account, "account_key": key})

cmd, container = sys.argv[1], sys.argv[2]
cc = svc.get_container_client(container)
if cmd == "mb":
    cc.create_container()
elif cmd == "keys":
    prefix = sys.argv[3] if len(sys.argv) > 3 else None
    for b in cc.list_blobs(name_starts_with=prefix):
        print(b.name)
elif cmd == "get":
    with open(sys.argv[4], "wb") as f:
        cc.download_blob(sys.argv[3]).readinto(f)
elif cmd == "put":
    with open(sys.argv[4], "rb") as f:
        cc.upload_blob(sys.argv[3], f)
elif cmd == "sas":
    hours = float(sys.argv[3]) if len(sys.argv) > 3 else 2
    print(generate_container_sas(
        account, container, account_key=key,
        permission=ContainerSasPermissions(read=True, add=True, create=True, write=True,
                                           delete=True, list=True),
        expiry=datetime.datetime.utcnow() + datetime.timedelta(hours=hours)))
elif cmd == "props":
    p = cc.get_blob_client(sys.argv[3]).get_blob_properties()
    md5 = p.content_settings.content_md5
    print(p.blob_type, bytes(md5).hex() if md5 else "-")
else:
    sys.exit("azref.py: unknown command " + cmd)
