"""A job naming a repository: its URL and ref are checked at submission, nothing queued if bad."""

from __future__ import annotations

import httpx
import pytest


def _job(repo: dict[str, str]) -> dict[str, object]:
    return {
        "job_type": "diagram_export",
        "spec": {"text": "build from the repository"},
        "code": {"files": [{"path": "main.sh", "content": "ls"}]},
        "created_by": "tester",
        "repo": repo,
    }


@pytest.mark.parametrize(
    ("repo", "says"),
    [
        ({"url": "https://user:pw@git.example.com/a/b.git"}, "must not embed credentials"),
        ({"url": "https://ghp_token@git.example.com/a/b.git"}, "must not embed credentials"),
        ({"url": "ext::sh%-c%touch%/tmp/pwned"}, "remote helpers"),
        ({"url": "/etc"}, "not a repository URL"),
        ({"url": "--upload-pack=touch"}, "must not start with '-'"),
        ({"url": "https://git.example.com/a/b.git", "ref": "--output=/tmp/x"}, "ref"),
        ({"url": "https://git.example.com/a/b.git", "ref": "a..b"}, "ref"),
    ],
)
async def test_a_bad_repository_is_refused_with_the_field_and_nothing_queued(
    client: httpx.AsyncClient, repo: dict[str, str], says: str
) -> None:
    response = await client.post("/api/v1/jobs/run", json=_job(repo))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert says in response.text
    assert "repo" in str(body)
    listed = await client.get("/api/v1/runs")
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/team/repo.git",
        "ssh://git@git.example.com:2222/team/repo.git",
        "git@git.example.com:team/repo.git",
    ],
)
async def test_a_good_repository_is_accepted(client: httpx.AsyncClient, url: str) -> None:
    response = await client.post("/api/v1/jobs/run", json=_job({"url": url, "ref": "v1.2.0"}))
    assert response.status_code == 202, response.text
