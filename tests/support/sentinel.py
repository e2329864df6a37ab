"""A private Redis replica set under Sentinel for failover tests: one primary, replicas started
with `--replicaof`, and three Sentinels (`redis-server --sentinel` with a generated config
file), every process on a free loopback port in one temporary directory.

`SentinelSet(replicas=2).start()`, then `.sentinels` (the SSO_REDIS_SENTINELS value),
`.primary()` (the node the Sentinels name), `.kill_primary()` (SIGKILL), `.wait_for_new_primary()`
(how long the Sentinels took), `.close()`.

The Sentinels are tuned to fail over in a few seconds (down-after 1 s, failover-timeout 3 s);
every node syncs without the diskless-sync delay (5 s by default) so a replica attaches at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.servers import free_port, stop_process, wait_for

MASTER_NAME = "contactsync"


def _redis_server() -> str:
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server is not installed: run `make services`")
    return binary


class RedisNode:
    """One redis-server (primary or replica) on a free loopback port, without persistence."""

    def __init__(self, base: Path, name: str):
        self.port = free_port()
        self.dir = base / name
        self.dir.mkdir()
        self.log_path = self.dir / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis("127.0.0.1", self.port, db=db, socket_timeout=2, decode_responses=True)

    def start(self, replica_of: RedisNode | None = None) -> RedisNode:
        args = [
            _redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--logfile", str(self.log_path),
            "--save", "",
            "--appendonly", "no",
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of.port)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, what=f"redis on port {self.port}")
        return self

    def _answers(self) -> bool:
        with self.client() as client:
            return client.ping()

    def replication(self) -> dict:
        with self.client() as client:
            return client.info("replication")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to replicas or Sentinels."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the node keeps its connections but answers nothing."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.resume()  # a paused process cannot act on SIGTERM
        stop_process(self.process)
        self.process = None


class SentinelNode:
    """`redis-server <config> --sentinel` watching MASTER_NAME."""

    def __init__(self, base: Path, name: str):
        self.port = free_port()
        self.dir = base / name
        self.dir.mkdir()
        self.config = self.dir / "sentinel.conf"
        self.log_path = self.dir / "sentinel.log"
        self.process: subprocess.Popen | None = None

    def client(self) -> redis.Redis:
        return redis.Redis("127.0.0.1", self.port, socket_timeout=2, decode_responses=True)

    def start(self, primary: RedisNode, quorum: int, down_after_ms: int, failover_ms: int):
        # Sentinel rewrites its config file (what it learns of replicas and peers), so each one
        # has its own, written before the first start.
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.dir}\n"
            f"logfile {self.log_path}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary.port} {quorum}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} {failover_ms}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self.process = subprocess.Popen(
            [_redis_server(), str(self.config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, what=f"sentinel on port {self.port}")
        return self

    def _answers(self) -> bool:
        with self.client() as client:
            return client.ping()

    def master_state(self) -> dict:
        with self.client() as client:
            return client.sentinel_master(MASTER_NAME)

    def master_address(self) -> tuple[str, int] | None:
        """What `SENTINEL get-master-addr-by-name` answers (None when it does not answer)."""
        try:
            with self.client() as client:
                answer = client.sentinel_get_master_addr_by_name(MASTER_NAME)
        except redis.RedisError:
            return None
        return (answer[0], int(answer[1])) if answer else None

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


class SentinelSet:
    def __init__(
        self,
        replicas: int = 2,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ):
        self.base = Path(tempfile.mkdtemp(prefix="cs-test-sentinel-"))
        self.nodes = [RedisNode(self.base, f"redis-{i}") for i in range(1 + replicas)]
        self.sentinel_nodes = [SentinelNode(self.base, f"sentinel-{i}") for i in range(sentinels)]
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    @property
    def sentinels(self) -> str:
        """The SSO_REDIS_SENTINELS value."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinel_nodes)

    def start(self, timeout: float = 30.0) -> SentinelSet:
        primary, *replicas = self.nodes
        try:
            primary.start()
            for replica in replicas:
                replica.start(replica_of=primary)
            wait_for(
                lambda: all(r.replication().get("master_link_status") == "up" for r in replicas),
                timeout=timeout,
                what="replicas in sync",
            )
            quorum = len(self.sentinel_nodes) // 2 + 1
            for sentinel in self.sentinel_nodes:
                sentinel.start(primary, quorum, self.down_after_ms, self.failover_timeout_ms)
            # A failover needs a majority of Sentinels that know each other (they meet through
            # the primary's hello channel, every 2 s) and know the replicas to promote.
            wait_for(self.converged, timeout=timeout, interval=0.2, what="sentinels converged")
        except BaseException:
            self.close()
            raise
        return self

    def converged(self) -> bool:
        peers = len(self.sentinel_nodes) - 1
        replicas = sum(1 for node in self.nodes if node.process is not None) - 1
        for sentinel in self.sentinel_nodes:
            state = sentinel.master_state()
            if int(state["num-other-sentinels"]) < peers or int(state["num-slaves"]) < replicas:
                return False
        return True

    def primary_address(self) -> tuple[str, int] | None:
        """The primary a majority of the Sentinels name, or None while they disagree."""
        answers = [s.master_address() for s in self.sentinel_nodes if s.process is not None]
        for address in set(answers):
            if address is not None and answers.count(address) > len(self.sentinel_nodes) // 2:
                return address
        return None

    def primary(self) -> RedisNode:
        address = self.primary_address()
        return next(node for node in self.nodes if node.address == address)

    def replicas(self) -> list[RedisNode]:
        primary = self.primary()
        return [n for n in self.nodes if n is not primary and n.process is not None]

    def kill_primary(self) -> tuple[RedisNode, float]:
        """SIGKILL the current primary; the node and the monotonic time of the kill."""
        node = self.primary()
        node.kill()
        return node, time.monotonic()

    def wait_for_new_primary(self, old: RedisNode, timeout: float = 30.0) -> tuple[str, int]:
        """Wait until every running Sentinel names a primary other than `old`; its address."""

        def moved():
            answers = {s.master_address() for s in self.sentinel_nodes if s.process is not None}
            return len(answers) == 1 and None not in answers and old.address not in answers

        wait_for(moved, timeout=timeout, interval=0.02, what="sentinels to name a new primary")
        return self.primary_address()

    def logs(self) -> str:
        parts = []
        for path in sorted(self.base.glob("*/*.log")):
            parts.append(f"--- {path.parent.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        for node in [*self.sentinel_nodes, *self.nodes]:
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)
