"""Apk v2 package and APKINDEX format: keys, writer, reader and verifier."""
