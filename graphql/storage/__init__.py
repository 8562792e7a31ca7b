"""Uploads and attachments: presigned URLs, attach and detach, the Attachment type."""
