"""Typed keys for what the aiohttp application and its requests hold."""

from __future__ import annotations

from aiohttp import web

from serving.servable import ServableManager
from serving.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVABLES = web.AppKey("servables", ServableManager)
