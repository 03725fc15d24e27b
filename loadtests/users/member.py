"""A member: logs in, pages through the feed, opens own private posts, views a creator's page.

A fresh account has no private post to open, so a member without one uploads a single private image when
it starts (the private read path is what this persona exists to measure).
"""

from __future__ import annotations

import random
from typing import Any

from locust import between, task

from loadtests.common.api import Group
from loadtests.common.personas import MEMBER
from loadtests.users.base import ApiUser


class Member(ApiUser):
    persona = "member"
    weight = MEMBER.weight
    wait_time = between(MEMBER.min_wait_s, MEMBER.max_wait_s)

    def on_start(self) -> None:
        self.last_page: list[dict[str, Any]] = []
        self.sign_in()
        own, _ = self.feed_page(f"/feed/by_user/{self.user_id}?limit=12", Group.OWN_POSTS)
        if not any(not item.get("public", True) for item in own):
            self.upload("private")

    @task(4)
    def browse(self) -> None:
        self.last_page = self.browse_feed(auth=True, pages=3, images=2)

    @task(2)
    def open_own_private_post(self) -> None:
        own, _ = self.feed_page(f"/feed/by_user/{self.user_id}?limit=12", Group.OWN_POSTS)
        private = [item for item in own if not item.get("public", True)]
        if not private:
            return
        uri = self.media_uri(str(random.choice(private)["id"]))
        if uri:
            self.fetch_image(uri, Group.IMAGE_PRIVATE)

    @task(2)
    def creator_page(self) -> None:
        self.visit_creator(self.last_page, auth=True)

    @task(1)
    def account(self) -> None:
        self.call("GET", "/users/me", Group.ME, keys=("id", "username"))
