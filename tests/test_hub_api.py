"""The huggingface_hub functions indextts_core.hub builds on, as requirements.txt pins them.

``http_get`` lives in ``huggingface_hub.file_download`` and is not promised to stay as it is;
this test names every parameter and field the downloader passes or reads, so a release in the
pinned range that changes them fails here, before a user's download does.
"""

from __future__ import annotations

import dataclasses
import inspect

import huggingface_hub
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status


def _params(fn) -> set[str]:
    return set(inspect.signature(fn).parameters)


def test_the_functions_the_downloader_calls_take_its_arguments():
    assert {"url", "temp_file", "resume_size", "headers", "expected_size", "displayed_filename"} <= _params(http_get)
    assert {"url", "token", "timeout", "library_name"} <= _params(huggingface_hub.get_hf_file_metadata)
    assert {"repo_id", "filename", "cache_dir", "revision"} <= _params(huggingface_hub.try_to_load_from_cache)
    assert {"token", "library_name"} <= _params(build_hf_headers)
    assert {"response"} <= _params(hf_raise_for_status)
    assert callable(get_session().get)


def test_file_metadata_has_the_fields_the_downloader_reads():
    names = {f.name for f in dataclasses.fields(huggingface_hub.HfFileMetadata)}
    assert {"commit_hash", "etag", "location", "size"} <= names


def test_installed_release_is_in_the_pinned_range():
    major = int(huggingface_hub.__version__.split(".")[0])
    minor = int(huggingface_hub.__version__.split(".")[1])
    assert (major, minor) >= (0, 23) and major < 3, huggingface_hub.__version__
