from __future__ import annotations

from typing import ClassVar

import pytest

from cxloop_libs.config import DEV_PII_HASH_KEY, ConfigError, ServiceSettings


class DemoSettings(ServiceSettings):
    service_name: ClassVar[str] = "identity"


def test_service_specific_variable_beats_the_generic_one() -> None:
    s = DemoSettings.from_env(
        {
            "CXLOOP_ENV": "development",
            "CXLOOP_DATABASE_URL": "sqlite:///generic.db",
            "CXLOOP_IDENTITY_DATABASE_URL": "postgresql://db/identity",
            "CXLOOP_NATS_URL": "nats://n1:4222,nats://n2:4222",
        }
    )
    assert s.database_url == "postgresql://db/identity"
    assert s.nats_url == "nats://n1:4222,nats://n2:4222"


def test_defaults_follow_the_design_ports_and_data_dir() -> None:
    s = DemoSettings.from_env({"CXLOOP_ENV": "development", "CXLOOP_DATA_DIR": "/tmp/x"})
    assert s.grpc_port == 50051
    assert s.metrics_port == 9101
    assert s.database_url == "sqlite:////tmp/x/identity.db"
    assert s.hash_key == DEV_PII_HASH_KEY.encode()


def test_every_bad_value_is_named_by_its_variable() -> None:
    with pytest.raises(ConfigError) as err:
        DemoSettings.from_env(
            {
                "CXLOOP_ENV": "development",
                "CXLOOP_GRPC_PORT": "99999",
                "CXLOOP_NATS_URL": "http://wrong",
                "CXLOOP_LOG_LEVEL": "chatty",
            }
        )
    text = str(err.value)
    assert "CXLOOP_GRPC_PORT" in text
    assert "CXLOOP_NATS_URL: must be a nats://" in text
    assert "CXLOOP_LOG_LEVEL" in text
    assert len(err.value.problems) == 3


def test_production_has_no_default_hash_key() -> None:
    with pytest.raises(ConfigError, match="CXLOOP_PII_HASH_KEY is required"):
        DemoSettings.from_env({})
    with pytest.raises(ConfigError, match="must not be the development key"):
        DemoSettings.from_env({"CXLOOP_PII_HASH_KEY": DEV_PII_HASH_KEY})
    s = DemoSettings.from_env({"CXLOOP_PII_HASH_KEY": "a-real-secret-of-some-length"})
    assert not s.is_development


def test_grpc_tokens_may_name_their_caller() -> None:
    s = DemoSettings.from_env(
        {"CXLOOP_ENV": "development", "CXLOOP_GRPC_TOKENS": "crm:s3cret, x9y8z7 ,callcentre:abc"}
    )
    # Clients present only the token; the name is for audit logs.
    assert s.accepted_grpc_tokens == frozenset({"s3cret", "x9y8z7", "abc"})
    names = s.grpc_token_names
    assert names["s3cret"] == "crm"
    assert names["abc"] == "callcentre"
    assert names["x9y8z7"].startswith("token-") and "x9y8z7" not in names["x9y8z7"]
