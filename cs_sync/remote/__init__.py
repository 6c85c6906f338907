"""The remote: rclone (cs_sync.remote.rclone is the only module that starts rclone) and
what a version folder holds (listing, sidecars read, each set classified).

May import: cs_sync.core, cs_sync.archive.
"""
