"""What the client and the repository server share: the formats both read and write.

APKINDEX files, apk versions and names, the wheel spec's rules (member paths, the
``.dist-info`` folder, RECORD, entry points and scripts, the ZIP records read by hand) and
the wire constants of our repository. Both distributions take these rules from here, so
they cannot drift apart; the server imports the client through this package only.

The contract: this package imports the standard library and ``packaging``, never another
module of ``ipydeps``, and this file imports nothing, so ``import ipydeps.formats.apkindex``
loads a handful of modules. Each module lists its public names in ``__all__``.
"""
