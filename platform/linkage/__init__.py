"""Five-village linkage (五村联动): what villages agree to share, and the exchange
schema the sync jobs publish those shared copies into (docs/design.md, "Write
path, outbox and sync")."""
