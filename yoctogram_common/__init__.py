"""What the backend, the compressor and the infrastructure share: the image key layout (`keys`), the S3 event
shapes (`events`) and the JSON log format (`jsonlog`). Standard library only.

Both images carry it: `backend/yoctogram_common` and `compressor/yoctogram_common` are links to this folder,
which the CDK copies into each image's build context (`SymlinkFollowMode.ALWAYS`), and each Dockerfile
copies it next to its code. The infrastructure imports it from the repository root.
"""
