"""Files attached to village records: declarations, upload tickets, attach and detach."""
