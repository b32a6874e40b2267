import re
from pathlib import Path

import pytest

from qa_app.errors import SettingsError
from qa_app.settings import SETTINGS, Settings, load_settings, settings_environment

pytestmark = pytest.mark.unit


def test_defaults_when_no_variables_are_set() -> None:
    assert load_settings({}) == Settings()
    assert Settings().milvus_uri == "qa_app.db" and Settings().is_embedded


def test_variables_are_read_with_the_qa_prefix_and_typed() -> None:
    settings = load_settings({"QA_TOP_K": "7", "QA_MILVUS_URI": "http://milvus:19530", "QA_TIMEOUT": "2.5",
                              "TOP_K": "99"})
    assert (settings.top_k, settings.milvus_uri, settings.timeout) == (7, "http://milvus:19530", 2.5)
    assert not settings.is_embedded


@pytest.mark.parametrize("environ,message", [
    ({"QA_TOP_K": "many"}, "QA_TOP_K='many' is not a valid int"),
    ({"QA_RRF_K": "0"}, "QA_RRF_K must be positive"),
    ({"QA_PRECISION": "int4"}, "QA_PRECISION must be one of auto, fp32, bf16, int8, got 'int4'"),
])
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(environ)


def test_cli_flags_override_and_none_means_unset() -> None:
    settings = Settings().replace(collection="docs", top_k=None)
    assert settings.collection == "docs" and settings.top_k == Settings().top_k


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [s.name for s in SETTINGS if f"QA_{s.name.upper()}" not in readme]
    assert missing == []


def test_settings_survive_the_trip_through_the_environment() -> None:
    settings = Settings(milvus_uri="http://m:19530", top_k=9, timeout=2.5, llm_temperature=0.0, api_token="t")
    assert load_settings(settings_environment(settings)) == settings
