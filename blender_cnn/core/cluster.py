"""A Dask cluster to spread long work over (docs/scaling.md): this machine's, or one a scheduler runs.

``ADDRESS`` is ``local:N``, a ``LocalCluster`` of N single-threaded worker
processes on this machine, or a scheduler's address (``tcp://host:8786``)
that ``dask scheduler`` / ``dask worker``, dask-jobqueue or Kubernetes run.
Dask distributed does the scheduling and retries the tasks of a worker that
dies; nothing here schedules. ``connect`` gives one clear error for an address
that is malformed or where no scheduler answers within a few seconds.

Work on a cluster stops when told (Ctrl-C, Esc): ``stop`` cancels what has
not started, and sets the job's ``cancel_event``, a cluster-wide flag that
tasks of several steps (a chunk of frames) check between them; closing a local
cluster also ends its worker processes.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

from .errors import BlenderCNNError, first_line

LOCAL_PREFIX = "local:"
CONNECT_SECONDS = 5
MAX_LOCAL_WORKERS = 64
ADDRESS_HINT = "use local:N (N worker processes on this machine) or a scheduler's address such as tcp://host:8786"
SCHEME = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")


def local_worker_count(address: str) -> int | None:
    """N of ``local:N``; None for a scheduler's address. Raises for an address that is neither."""
    address = address.strip()
    if address.startswith(LOCAL_PREFIX):
        count = address[len(LOCAL_PREFIX) :]
        if not count.isdigit() or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
            raise BlenderCNNError(address, f"is not a cluster address: local:N takes 1 to {MAX_LOCAL_WORKERS} workers")
        return int(count)
    if SCHEME.match(address) or re.match(r"^[\w.\-]+:\d+$", address):
        return None
    raise BlenderCNNError(address or "''", f"is not a cluster address; {ADDRESS_HINT}")


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` of the cluster at ``address``, closed (with its local cluster) on leaving."""
    workers = local_worker_count(address)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BlenderCNNError(
            address, "needs Dask distributed in this Python (pip install distributed; see requirements.txt)"
        ) from None

    # A worker that dies is reported by the client's own error; Dask's warnings would bury the progress lines.
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if workers is not None:
        # A local cluster's scheduler runs in this process: a Ctrl-C in the middle of a scatter leaves its
        # handler's task failed, which asyncio would print as a traceback ("Task exception was never retrieved").
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    cluster = None
    try:
        if workers is not None:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # The scheduler's HTTP server (health checks) still starts without a dashboard; on its default
                # port 8787 it warns on stderr whenever another cluster already has that port.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.CRITICAL,
                # Dask's default (RAM / N per worker) would have the nanny kill a worker rendering a big scene
                # or holding a VGG16 epoch, and retry it until the job fails; the machine's own limit applies.
                memory_limit=0,
            )
            client = Client(cluster)
        else:
            client = Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as error:
        if cluster is not None:
            cluster.close()
        raise BlenderCNNError(
            address,
            f"no Dask scheduler answers there within {CONNECT_SECONDS} s ({first_line(error)}); start one with "
            "'dask scheduler' and workers with 'dask worker ADDRESS' (docs/scaling.md)",
        ) from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):  # a cluster already gone (Ctrl-C, a dead scheduler) closes quietly
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def cancel_event(client: Any) -> Any:
    """A cluster-wide flag, unique to one job, that its tasks poll between steps to stop early."""
    from distributed import Event

    return Event(f"blender_cnn-cancel-{uuid.uuid4().hex}", client=client)


def stop(client: Any, futures: list[Any], event: Any = None) -> None:
    """Stop a job: its running tasks see ``event`` and end after their current step, the rest are cancelled."""
    if event is not None:
        with contextlib.suppress(Exception):
            event.set()
    with contextlib.suppress(Exception):
        client.cancel(futures, force=True)
