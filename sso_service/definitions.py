"""Where a Cloud ID's External Authentication definition comes from: the clouds file (wins for
the ids it lists) or the provider portal, whose answers are cached in Redis so every worker
shares one cache."""

from __future__ import annotations

import json
import logging
import urllib.parse
from pathlib import Path

import redis
import yaml
from marshmallow import ValidationError
from prometheus_client import Counter

from shared.config import ConfigError
from sso_service.ext_auth import Definition
from sso_service.schemas import DefinitionSchema
from sso_service.upstream import MAX_BODY_BYTES, Request, UpstreamClient, UpstreamFailure

log = logging.getLogger(__name__)

DEFINITION_LOOKUPS = Counter(
    "sso_definition_lookups_total",
    "External Authentication definition lookups, by source (file, cache, portal) and outcome.",
    ["source", "outcome"],
)
MAX_PORTAL_BYTES = MAX_BODY_BYTES


def portal_url_for(template: str, cloud_id: str) -> str:
    """The portal URL of one Cloud ID. The id is percent-encoded whole ('/' included), and ids
    made only of dots are refused before this point, so an id can never change the path the
    template names (`..` would otherwise walk up a segment when the URL is normalised)."""
    if not cloud_id.strip("."):
        raise UnknownCloud(cloud_id)
    return template.replace("{cloud_id}", urllib.parse.quote(cloud_id, safe=""))


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


class _CloudsLoader(yaml.SafeLoader):
    """Safe YAML whose mapping keys are the text written: YAML 1.1 reads an unquoted `NO`,
    `on`, `0123`, `1.10` or `1_000` as a boolean or a number, and the Cloud ID phones send
    would then never match the one in the file."""

    def construct_mapping(self, node, deep=False):
        # Merge keys (`<<`) first, so the keys they bring in are taken as written too.
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _YAML_MERGE:
                key_node.tag = _YAML_STR
        return super().construct_mapping(node, deep=deep)


_YAML_STR = "tag:yaml.org,2002:str"
_YAML_MERGE = "tag:yaml.org,2002:merge"


def load_clouds_file(path: str) -> dict[str, Definition]:
    """Parse the clouds file (YAML, which also reads JSON); ConfigError naming the problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        raw = yaml.load(text, Loader=_CloudsLoader)  # noqa: S506 - a SafeLoader subclass
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
        upstream: UpstreamClient | None = None,
    ):
        self.redis = client
        self.portal_url = portal_url
        self.cache_seconds = cache_seconds
        self.portal_timeout = portal_timeout
        self.clouds = clouds or {}
        self.upstream = upstream or UpstreamClient()

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
        url = portal_url_for(self.portal_url, cloud_id)
        # The portal URL is the operator's own setting, so the private-address guard does not
        # apply; cookies, redirects and the whole-exchange deadline are as for ext-auth.
        try:
            answer = self.upstream.exchange(
                Request("GET", url, {"Accept": "application/json"}),
                self.portal_timeout,
                max_body=MAX_PORTAL_BYTES,
                guard=False,
            )
        except UpstreamFailure as exc:
            raise self._failed(exc.reason) from None
        if answer.status == 404:
            DEFINITION_LOOKUPS.labels("portal", "unknown").inc()
            raise UnknownCloud(cloud_id)
        if answer.status != 200:
            raise self._failed(f"status_{answer.status // 100}xx")
        try:
            return json.loads(answer.body)
        except (ValueError, RecursionError):  # RecursionError: nesting thousands deep
            raise self._failed("unparseable") from None

    @staticmethod
    def _failed(reason: str) -> PortalError:
        DEFINITION_LOOKUPS.labels("portal", reason).inc()
        log.warning("portal lookup failed: %s", reason)
        return PortalError(reason)
