"""`astro install` into temporary server directories, then the real engine configured with
exactly those directories: the installed binary and UDF XML serve the UDF and the ingest view."""

from __future__ import annotations

import json
import subprocess

from astro_dev import embedded
from astro_dev.api_server import astros_body, astros_reply
from conftest import USER_SCRIPTS

CREW = [("ISS", "Oleg Kononenko"), ("Tiangong", "Ye Guangfu")]


def test_an_installed_astro_serves_the_udf_and_the_ingest_view(tmp_path, api, api_url):
    scripts, config = tmp_path / "user_scripts", tmp_path / "clickhouse-server"
    scripts.mkdir()
    config.mkdir()
    install = subprocess.run(
        [str(USER_SCRIPTS / "astro"), "install", "--user-scripts", str(scripts),
         "--config-dir", str(config), "--allow-host", "127.0.0.1", "--allow-private"],
        capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    assert install.stdout == "SYSTEM RELOAD FUNCTIONS;\nSYSTEM RELOAD DICTIONARIES;\n"
    api.set_default("/astros.json", astros_reply(CREW))
    # The engine sees only the installed copies: the binary in user_scripts, the UDF XML in
    # the config directory (as a server's *_function.xml glob would).
    with embedded.Database(tmp_path / "db", user_scripts_dir=scripts, functions_dir=config) as db:
        db.apply()
        answer = db.scalar(f"SELECT astro_fetch('{api_url}')")
        assert json.loads(answer) == json.loads(astros_body(CREW))
        db.ingest()
        assert sorted((r["craft"], r["name"]) for r in db.rows(
            "SELECT craft, name FROM astro.people_now")) == sorted(CREW)
        assert db.scalar("SELECT count() FROM system.functions WHERE name = 'astro_fetch'") == "1"
    uninstall = subprocess.run(
        [str(scripts / "astro"), "uninstall", "--user-scripts", str(scripts),
         "--config-dir", str(config)], capture_output=True, text=True)
    assert uninstall.returncode == 0, uninstall.stderr
    assert sorted(p.name for p in scripts.iterdir()) == []
    assert sorted(p.name for p in config.iterdir()) == []
