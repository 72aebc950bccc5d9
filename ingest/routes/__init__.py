"""HTTP routes for training sites: check-ins, snapshots, liveness challenges, online study, the site's classes."""

from fastapi import APIRouter

from ingest.routes import checkins, liveness, online, site, snapshots

ROUTERS: list[APIRouter] = [checkins.router, liveness.router, snapshots.router, site.router, online.router]
