#!/usr/bin/env python3
# tuspy_upload.py: drives Debian's python3-tuspy (tusclient 1.0) against Coffer's tus endpoint for
# tests/integration/tuspy.test.mjs, a tus client written independently of Coffer and of
# tus-js-client. One JSON argument:
#   {"endpoint": "https://127.0.0.1:PORT/api/v1/uploads", "token": "...", "file": "/path",
#    "chunk_size": N, "metadata": {"filename": ..., "parent": ...},
#    "stop_at": N (optional: stop once this many bytes are stored), "url": "..." (optional: resume
#    this upload; tusclient asks the server for its offset with HEAD first), "checksum": bool,
#    "store": "/path" (optional: tusclient's FileStorage; an upload of the same bytes resumes from the
#    URL stored there)}
# Prints one JSON line: {"url", "offset", "start_offset", "patches", "node_id"} or, when the server
# refused a request, {"url", "offset", "error": {"status", "body"}}; exits 0 in both cases.
# TLS is verified: the test sets REQUESTS_CA_BUNDLE to the test server's certificate.
import json
import sys

from tusclient import client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed


def main():
    args = json.loads(sys.argv[1])
    tc = client.TusClient(args["endpoint"], headers={"Authorization": "Bearer " + args["token"]})
    storage = None
    if args.get("store"):
        # tusclient's own resumption: the upload URL kept in a TinyDB file under the file's fingerprint.
        from tusclient.storage import filestorage
        storage = filestorage.FileStorage(args["store"])
    up = tc.uploader(file_path=args["file"], chunk_size=args["chunk_size"], metadata=args["metadata"],
                     url=args.get("url"), upload_checksum=bool(args.get("checksum")),
                     store_url=storage is not None, url_storage=storage)
    out = {"url": up.url, "start_offset": up.offset, "patches": 0, "node_id": None}
    stop_at = args.get("stop_at") or up.get_file_size()
    try:
        # Uploader.upload(stop_at) chunk by chunk, counting the PATCH requests.
        up.stop_at = stop_at
        while up.offset < up.stop_at:
            up.upload_chunk()
            out["patches"] += 1
            out["node_id"] = up.request.response_headers.get("coffer-node-id")
    except (TusUploadFailed, TusCommunicationError) as e:
        body = e.response_content
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        out["error"] = {"status": e.status_code, "body": body if body is not None else str(e)}
    out["url"] = up.url
    out["offset"] = up.offset
    print(json.dumps(out))


if __name__ == "__main__":
    main()
