"""The personas, one Locust user class each, weighted: visitors browse, members read, uploaders upload.

Weights 6 : 3 : 1 are a guess at a photo site's mix (most people only look); with the smoke shape's 10
users every persona is present.
"""

from loadtests.users.member import Member
from loadtests.users.uploader import Uploader
from loadtests.users.visitor import Visitor

__all__ = ["Member", "Uploader", "Visitor"]
