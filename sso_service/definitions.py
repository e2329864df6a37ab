"""Where a Cloud ID's External Authentication definition comes from: the clouds file (wins for
the ids it lists) or the provider portal, whose answers are cached in Redis so every worker
shares one cache."""

from __future__ import annotations

import json
import logging
import urllib.parse
from pathlib import Path

import redis
import requests
import yaml
from marshmallow import ValidationError
from prometheus_client import Counter

from shared.config import ConfigError
from shared.http import make_session
from sso_service.ext_auth import Definition
from sso_service.schemas import DefinitionSchema

log = logging.getLogger(__name__)

DEFINITION_LOOKUPS = Counter(
    "sso_definition_lookups_total",
    "External Authentication definition lookups, by source (file, cache, portal) and outcome.",
    ["source", "outcome"],
)
MAX_PORTAL_BYTES = 256 * 1024


class UnknownCloud(Exception):
    """No definition exists for the Cloud ID."""


class PortalError(Exception):
    """The portal is unreachable, slow, answers 5xx or something unusable."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def load_definition(data: object) -> Definition:
    """A Definition from its JSON/YAML fields; ValidationError when unusable."""
    if not isinstance(data, dict):
        raise ValidationError("A definition must be an object.")
    return DefinitionSchema().load(data)


def load_clouds_file(path: str) -> dict[str, Definition]:
    """Parse the clouds file (YAML, which also reads JSON); ConfigError naming the problem."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"SSO_CLOUDS_FILE {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"SSO_CLOUDS_FILE {path} is neither JSON nor YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"SSO_CLOUDS_FILE {path} must map Cloud IDs to definitions")
    clouds: dict[str, Definition] = {}
    for cloud_id, data in raw.items():
        try:
            clouds[str(cloud_id)] = load_definition(data)
        except ValidationError as exc:
            raise ConfigError(
                f"SSO_CLOUDS_FILE {path}: definition of {cloud_id!s} is invalid: {exc.messages}"
            ) from None
    return clouds


class DefinitionSource:
    def __init__(
        self,
        client: redis.Redis,
        portal_url: str | None,
        cache_seconds: int,
        portal_timeout: float,
        clouds: dict[str, Definition] | None = None,
        session: requests.Session | None = None,
    ):
        self.redis = client
        self.portal_url = portal_url
        self.cache_seconds = cache_seconds
        self.portal_timeout = portal_timeout
        self.clouds = clouds or {}
        self.session = session or make_session(user_agent="contact-sync-sso")

    def get(self, cloud_id: str) -> Definition:
        """The definition for cloud_id; UnknownCloud, PortalError, or a redis error."""
        if cloud_id in self.clouds:
            DEFINITION_LOOKUPS.labels("file", "found").inc()
            return self.clouds[cloud_id]
        if not self.portal_url:
            DEFINITION_LOOKUPS.labels("file", "unknown").inc()
            raise UnknownCloud(cloud_id)
        cache_key = f"sso:definition:{cloud_id}"
        cached = self.redis.get(cache_key) if self.cache_seconds else None
        if cached is not None:
            try:
                definition = load_definition(json.loads(cached))
                DEFINITION_LOOKUPS.labels("cache", "found").inc()
                return definition
            except (ValueError, ValidationError):
                self.redis.delete(cache_key)
        data = self._fetch(cloud_id)
        try:
            definition = load_definition(data)
        except ValidationError:
            DEFINITION_LOOKUPS.labels("portal", "invalid").inc()
            raise PortalError("invalid_definition") from None
        if self.cache_seconds:
            # Only usable definitions are cached; a 404 is asked again next time so a newly
            # provisioned cloud works at once.
            self.redis.set(cache_key, json.dumps(data), ex=self.cache_seconds)
        DEFINITION_LOOKUPS.labels("portal", "found").inc()
        return definition

    def _fetch(self, cloud_id: str) -> object:
        url = self.portal_url.replace("{cloud_id}", urllib.parse.quote(cloud_id, safe=""))
        try:
            response = self.session.get(
                url, timeout=self.portal_timeout, allow_redirects=False, stream=True
            )
        except requests.Timeout:
            raise self._failed("timeout") from None
        except requests.RequestException:
            raise self._failed("unreachable") from None
        try:
            if response.status_code == 404:
                DEFINITION_LOOKUPS.labels("portal", "unknown").inc()
                raise UnknownCloud(cloud_id)
            if response.status_code != 200:
                raise self._failed(f"status_{response.status_code // 100}xx")
            chunks, size = [], 0
            for chunk in response.iter_content(16384):
                size += len(chunk)
                if size > MAX_PORTAL_BYTES:
                    raise self._failed("too_large")
                chunks.append(chunk)
            body = b"".join(chunks)
            try:
                return json.loads(body)
            except ValueError:
                raise self._failed("unparseable") from None
        except requests.RequestException:
            raise self._failed("unreachable") from None
        finally:
            response.close()

    @staticmethod
    def _failed(reason: str) -> PortalError:
        DEFINITION_LOOKUPS.labels("portal", reason).inc()
        log.warning("portal lookup failed: %s", reason)
        return PortalError(reason)
