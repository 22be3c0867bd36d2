"""Runs gcplocal (Compute Engine, Cloud Storage, ...) on a loopback port for the tests.

Besides binding the port itself (see _common.py), it fixes operation ids:
gcplocal makes them 8 hex characters, while Compute Engine's are decimal
uint64 strings and google-cloud-compute-v1 refuses anything else.

And it lists objects as Cloud Storage does, which recovery-point discovery
relies on: in name order, with `delimiter` folding names into `prefixes`,
1,000 entries a page by default; and it reports real CRC32C checksums
(gcplocal writes "AAAAAA==" for every object).
"""

import base64
import secrets

from _common import announce, exit_when_stdin_closes, parse_args, quiet_request_logs


def decimal_operation_ids(store_cls) -> None:
    original = store_cls.create_operation

    def create_operation(self, *args, **kwargs):
        op = original(self, *args, **kwargs)
        # The returned dict is the one kept in the store, so get_operation sees the same id.
        op["id"] = str(secrets.randbits(63))
        return op

    store_cls.create_operation = create_operation


def crc32c(data: bytes) -> str:
    """CRC32C (Castagnoli), big-endian and base64 as Cloud Storage reports it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return base64.b64encode((crc ^ 0xFFFFFFFF).to_bytes(4, "big")).decode()


def _crc32c_table() -> list:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def storage_listing(service_cls) -> None:
    from flask import jsonify, request

    def list_objects(self, bucket: str):  # type: ignore[no-untyped-def]
        prefix = request.args.get("prefix", "")
        delimiter = request.args.get("delimiter", "")
        page = request.args.get("maxResults", type=int, default=1000)
        start = request.args.get("pageToken", default="")
        items = self.state.list("storage", "global", f"objects/{bucket}")
        entries = {}
        for item in items:
            name = item.get("name", "")
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            if delimiter and delimiter in rest:
                folded = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                entries[folded] = None
            else:
                entries[name] = item
        # The page token is the last name answered: the next page starts after it.
        names = [n for n in sorted(entries) if n > start]
        answer = {"kind": "storage#objects", "items": [], "prefixes": []}
        for name in names[:page]:
            if entries[name] is None:
                answer["prefixes"].append(name)
            else:
                answer["items"].append(entries[name])
        if len(names) > page:
            answer["nextPageToken"] = names[page - 1]
        return jsonify(answer)

    original_upload = service_cls.upload_object

    def upload_object(self, bucket: str):  # type: ignore[no-untyped-def]
        answer = original_upload(self, bucket)
        name = request.args.get("name", "unnamed")
        obj = self.state.get("storage", "global", f"objects/{bucket}", name)
        if obj is not None:
            obj["crc32c"] = crc32c(self._object_data.get(f"{bucket}/{name}", b""))
            self.state.put("storage", "global", f"objects/{bucket}", name, obj)
            return jsonify(obj)
        return answer

    service_cls.list_objects = list_objects
    service_cls.upload_object = upload_object


def main() -> None:
    args = parse_args(__doc__)
    exit_when_stdin_closes()
    quiet_request_logs()
    from gcplocal.server import create_app
    from gcplocal.state import StateStore
    from werkzeug.serving import make_server

    from gcplocal.services.storage.service import StorageService

    decimal_operation_ids(StateStore)
    storage_listing(StorageService)
    server = make_server(args.host, args.port, create_app(StateStore()), threaded=True)
    announce(args.host, server.server_port)
    server.serve_forever()


if __name__ == "__main__":
    main()
