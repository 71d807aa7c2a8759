"""The Ray engine: the same jobs as the local engine, run on a Ray cluster (or a Ray instance on this machine).

The driver (this process) plans the items as the local engine does (destinations, ``--skip-existing``, refused
outputs are answered here without a round trip) and streams the rest through the cluster:

* **per-item jobs** (thresholds, edges, colour ranges, compositing with stored masks): one CPU task per item runs
  decode → compute → encode → atomic write. The three stages stay fused in one task, as Ray Data fuses consecutive
  CPU map operators: shipping a decoded one-megapixel image between processes costs more than Otsu itself.
* **batched jobs** (a CNN): decoding is a CPU task per item; the model runs in an actor pool, one model per
  actor (one actor per GPU with ``num_gpus=1`` when the cluster has GPUs, else one actor per node using that
  node's cores), fed batches of the job's own batch size as resolved on the actor's machine; encoding and writing
  are a CPU task per item again. Each batch is decoded on its actor's node and saved where its masks are, so the
  decoded images (12 MB of float32 per megapixel) move through shared memory, not the network.

Memory stays bounded: items are pulled lazily from the input iterator and at most ``window`` of them are in flight
(decoded images live in the object store only while their item is in flight). Results come back to the driver as
they finish and are yielded in input order (``ordered``) or at once. Closing the generator (Ctrl-C, ``fail_fast``)
cancels every outstanding task, waits for the writers to stop (a cancelled write removes its temp file), and kills
the actors.

Inputs and outputs are paths that every node can read and write (a shared file system); see ``docs/scale-out.md``.

Ray is imported only when a :class:`RayExecutor` starts; without it that raises :class:`SetupError` with the one
line that installs it.

>>> RayExecutor(num_cpus=2).address is None  # nothing starts until the first execute() or start()
True
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from maskcli.cores import cpu_count, one_core_per_worker
from maskcli.errors import Interrupted, OptionError, SetupError
from maskcli.io.files import WriteGate, remove_temp_files_of_dead_processes
from maskcli.io.sources import Item
from maskcli.work import (
    FATAL,
    Job,
    Result,
    compute_isolated,
    describe,
    failed,
    file_identity,
    needs_work,
    process_item,
    save_or_fail,
)

INSTALL_HINT = "the Ray engine needs Ray, an optional extra: pip install 'maskcli[ray]'"

#: Seconds to wait, after cancelling, for running writers to stop (they remove their temp files on the way out).
CANCEL_GRACE_S = 30.0


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`SetupError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SetupError(INSTALL_HINT) from None
    return ray


class RayExecutor:
    """Runs jobs on Ray: an existing cluster (``address``) or a Ray instance started here for the run.

    Parameters
    ----------
    address : str, optional
        A cluster to connect to (``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:10001"``). None: start a private
        Ray instance on this machine and stop it on :meth:`close`.
    num_cpus : int, optional
        CPUs of the private instance (default: all of this machine's). Only without ``address``: a cluster's
        own resources decide there.
    temp_dir : str, optional
        The private instance's session folder (Ray's default is ``/tmp/ray``). Keep it short: Ray's Unix sockets
        live there and their paths are limited to about 107 characters.
    window : int, optional
        Items in flight at most (default: four per cluster CPU, and enough for two batches per model actor).

    Use it as a context manager, so that the private instance stops however the run ends::

        with RayExecutor() as executor:
            for result in maskcli.pipeline.run(items, job, executor=executor):
                ...
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, temp_dir: str | None = None,
                 window: int | None = None) -> None:
        if address is not None and num_cpus is not None:
            raise OptionError("num_cpus", "applies to a Ray instance started here, not to a cluster at an address")
        if num_cpus is not None and num_cpus < 1:
            raise OptionError("num_cpus", f"must be at least 1, not {num_cpus}")
        if window is not None and window < 1:
            raise OptionError("window", f"must be at least 1, not {window}")
        self.address = address
        self.num_cpus = num_cpus
        self.temp_dir = temp_dir
        self.window = window
        self._ray: Any = None
        self._owned = False
        self._stopped_folders: set[Any] = set()

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the cluster, or start the private instance (once)."""
        if self._ray is not None:
            return
        ray = import_ray()
        if ray.is_initialized():  # a caller's own Ray session: use it, leave it running
            self._ray = ray
            return
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                   "log_to_driver": True}
        if self.address is None:
            # "local" starts a new instance even when RAY_ADDRESS is set: the caller chose none.
            options.update(address="local", num_cpus=self.num_cpus)
            if self.temp_dir is not None:
                options["_temp_dir"] = str(self.temp_dir)
        else:
            _check_reachable(self.address)
            options["address"] = self.address
        try:
            ray.init(**options)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as error:
            ray.shutdown()
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            raise SetupError(f"cannot start or reach {where}: {error}") from None
        except BaseException:
            ray.shutdown()  # interrupted half-way: stop whatever had started
            raise
        self._ray = ray
        self._owned = True

    def close(self) -> None:
        """Disconnect; a private instance stops with all its processes."""
        if self._ray is not None and self._owned:
            self._ray.shutdown()
            # A writer still busy when the private instance stopped was killed with it and could not remove its
            # temp file; every process of that instance ran here and is gone now, so what they left can go.
            remove_temp_files_of_dead_processes(self._stopped_folders)
        self._ray, self._owned = None, False
        self._stopped_folders = set()

    def __enter__(self) -> RayExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ----------------------------------------------------------------------------------------------

    def execute(self, job: Job, items: Iterable[Item], *, ordered: bool,
                gate: WriteGate | None = None) -> Iterator[Result]:
        """Run ``job`` over ``items`` on the cluster, yielding one result per item as it finishes.

        ``gate`` is not used: the driver writes nothing, and each task writes through a gate of its own on its
        node; a cancelled task abandons its write (Ray raises ``KeyboardInterrupt`` in it).
        """
        self.start()
        return _Run(self._ray, job, self.window, self._stopped_folders).results(items, ordered=ordered)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT that refuses connections is a setup error now, not a minute of Ray's own retries."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "auto", "ray://..." and the like: Ray finds or reaches them itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise SetupError(f"cannot reach the Ray cluster at {address}: {error.strerror or error}") from None


class _Run:
    """One job on the cluster: the remote functions, the model actors and the items in flight."""

    def __init__(self, ray: Any, job: Job, window: int | None, stopped_folders: set[Any]) -> None:
        self.ray = ray
        self.job = job
        self.stopped_folders = stopped_folders  # where writers were in flight when the run stopped
        # The job travels once through the object store; each worker deserialises it once (see _worker_job).
        # Relative paths (inputs, outputs, masks, weights) mean what they mean here, on every node.
        self.handle = [uuid.uuid4().hex, ray.put(job), os.getcwd()]
        resources = ray.cluster_resources()
        cpus = max(1, int(resources.get("CPU", 1)))
        self.actors: list[Any] = []
        self.batch_size = 1
        if job.batched:
            self.actors = self._start_actors(resources)
            try:
                placed = ray.get([actor.placement.remote() for actor in self.actors])
            except ray.exceptions.RayError as error:  # the model could not start (weights, device) on a node
                self._kill_actors()
                cause = error.as_instanceof_cause() if isinstance(error, ray.exceptions.RayTaskError) else error
                if isinstance(cause, SetupError):
                    raise cause from None
                raise SetupError(f"the model could not start on the Ray cluster: {cause}") from None
            self.batch_size = max(1, min(size for size, _ in placed))
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            # Decode each batch on the node of the actor that will run it: a decoded one-megapixel image is 12 MB
            # of float32, which should cross shared memory, not the network. Soft: a node that leaves the
            # cluster leaves its work to the others.
            self.near = [NodeAffinitySchedulingStrategy(node, soft=True) for _, node in placed]
        batches = 2 * self.batch_size * len(self.actors)
        self.window = window or max(8, 4 * cpus, batches + 2 * cpus)
        self.process = ray.remote(num_cpus=1)(_process_task)
        self.load = ray.remote(num_cpus=1)(_load_task)
        self.save = ray.remote(num_cpus=1)(_save_task)
        self.turn = 0
        self.cancelled = False

    def _start_actors(self, resources: dict[str, float]) -> list[Any]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        model = self.ray.remote(_ModelActor)
        gpus = int(resources.get("GPU", 0))
        if gpus:
            # One model per GPU; its host-side work is light, so it reserves no CPU that decoding could use.
            return [model.options(num_gpus=1, num_cpus=0).remote(self.handle) for _ in range(gpus)]
        actors = []
        for node in self.ray.nodes():
            cores = int(node.get("Resources", {}).get("CPU", 0))
            if not node.get("Alive") or cores < 1:
                continue
            # One model per node, beside the decode and encode tasks, as the local engine runs them beside its
            # model in threads.
            strategy = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            actors.append(model.options(num_cpus=0, scheduling_strategy=strategy).remote(self.handle))
        if not actors:
            raise SetupError("the Ray cluster has no node with CPUs or GPUs to run the model on")
        return actors

    # -- submitting -------------------------------------------------------------------------------------------

    def _decode(self, item: Item) -> Any:
        """Decoding starts on the node of the actor whose turn comes next, where the batch will run."""
        near = self.near[self.turn % len(self.actors)]
        return self.load.options(scheduling_strategy=near).remote(self.handle, item)

    def _submit_batch(self, batch: list[_Entry]) -> None:
        """Decoded items to the next model actor, then each to a save task."""
        actor = self.actors[self.turn % len(self.actors)]
        self.turn += 1
        # One return per item, plus a marker so that a batch of one still comes back as a tuple.
        computed = actor.compute.options(num_returns=len(batch) + 1).remote(*(entry.value for entry in batch))
        for entry, pair in zip(batch, computed[:-1]):
            entry.upstream += [entry.value, pair]
            entry.value = self.save.remote(self.handle, entry.item, pair)

    # -- the stream -------------------------------------------------------------------------------------------

    def results(self, items: Iterable[Item], *, ordered: bool) -> Iterator[Result]:
        ray = self.ray
        self.pending: collections.deque[_Entry] = collections.deque()
        pending = self.pending
        batch: list[_Entry] = []  # decoding, waiting for a full batch before the model sees them
        iterator = iter(items)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.window:
                    item = next(iterator, None)
                    if item is None:
                        exhausted = True
                    elif not needs_work(item):  # refused or skipped: answered here without a round trip
                        pending.append(_Entry(item, process_item(self.job, item, WriteGate())))
                    elif self.job.batched:
                        pending.append(_Entry(item, self._decode(item), before=file_identity(item.destination)))
                        batch.append(pending[-1])
                        if len(batch) == self.batch_size:
                            self._submit_batch(batch)
                            batch = []
                    else:
                        pending.append(_Entry(item, self.process.remote(self.handle, item),
                                              before=file_identity(item.destination)))
                if batch:  # a short last batch, or the window is full of it
                    self._submit_batch(batch)
                    batch = []
                if not pending:
                    return
                # An entry leaves `pending` only once its result is in hand: a stop meanwhile still sees it.
                if ordered:
                    result = self._outcome(pending[0])
                    pending.popleft()
                    yield result
                    continue
                refs = [entry.value for entry in pending if not isinstance(entry.value, Result)]
                ready = set(ray.wait(refs, num_returns=1)[0]) if len(refs) == len(pending) else set()
                for entry in list(pending):
                    if isinstance(entry.value, Result) or entry.value in ready:
                        result = self._outcome(entry)
                        pending.remove(entry)
                        yield result
        except KeyboardInterrupt:
            self._cancel()
            raise Interrupted(self._finished()) from None
        finally:
            self._cancel()

    def _outcome(self, entry: _Entry) -> Result:
        if isinstance(entry.value, Result):
            return entry.value
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(entry.value)
        except FATAL:
            raise  # a task's SetupError arrives as a RayTaskError that is also a SetupError
        except exceptions.RayTaskError as error:
            return failed(entry.item, error.as_instanceof_cause())
        except exceptions.RayError as error:  # a worker or actor died, an object was lost
            return failed(entry.item, f"a Ray worker died (out of memory?): {type(error).__name__}")

    def _cancel(self) -> None:
        """Stop everything still in flight (once): queued tasks never start, running ones are interrupted."""
        if self.cancelled:
            return
        self.cancelled = True
        ray = self.ray
        self.stopped_folders.update(entry.item.destination.parent for entry in getattr(self, "pending", ())
                                    if not isinstance(entry.value, Result) and entry.item.destination is not None)
        running = [ref for entry in getattr(self, "pending", ()) for ref in (*entry.upstream, entry.value)
                   if not isinstance(ref, Result)]
        # Only what has not finished: cancelling a task whose reply is already on its way can trip an internal
        # check of Ray's task manager (seen with Ray 2.60: "Tried to complete task that was not pending").
        if running:
            done, _ = ray.wait(running, num_returns=len(running), timeout=0)
            finished = set(done)
            running = [ref for ref in running if ref not in finished]
        for ref in running:
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001 - already finished, or an actor task Ray cannot cancel: fine
                pass
        self._kill_actors()
        if running:
            # A cancelled writer removes its temp file on its way out; wait for that before returning.
            ray.wait(running, num_returns=len(running), timeout=CANCEL_GRACE_S)

    def _finished(self) -> list[Result]:
        """After a stop: the results of items that finished meanwhile (so every file left can be reported),
        including one whose output was renamed into place just before its task was interrupted."""
        ray = self.ray
        finished = []
        for entry in getattr(self, "pending", ()):
            if isinstance(entry.value, Result):
                finished.append(entry.value)
                continue
            if ray.wait([entry.value], timeout=0)[0]:
                try:
                    finished.append(ray.get(entry.value))
                    continue
                except ray.exceptions.RayError:
                    pass  # cancelled, or lost with its worker
            item = entry.item
            if item.destination is not None and file_identity(item.destination) not in (None, entry.before):
                finished.append(Result(item.index, item.name, str(item.destination), "written",
                                       relpath=item.source.relpath.as_posix()))
        return sorted(finished, key=lambda result: result.index)

    def _kill_actors(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []


@dataclasses.dataclass(eq=False)
class _Entry:
    """An item in flight: its Result (answered here) or the ref of the task that makes it, and the refs of the
    earlier stages it waits on (kept to cancel them; dropped with the entry, so the object store frees them)."""

    item: Item
    value: Any
    upstream: list[Any] = dataclasses.field(default_factory=list)
    #: The destination's identity when the item was sent: a changed one after Ctrl-C means it was written.
    before: tuple[int, int, int] | None = None


# -- what runs on the workers ---------------------------------------------------------------------------------

_WORKER_JOB: tuple[str, Job] | None = None


def _worker_job(handle: list[Any]) -> Job:
    """The job for this run, deserialised once per worker process (the handle nests its ref, so Ray does not
    resolve it per task), as the local engine's pool initialiser does."""
    global _WORKER_JOB
    token, ref, cwd = handle
    if _WORKER_JOB is None or _WORKER_JOB[0] != token:
        import ray

        one_core_per_worker()  # one task per CPU the scheduler granted
        _enter(cwd)
        _WORKER_JOB = (token, ray.get(ref))
    return _WORKER_JOB[1]


def _enter(cwd: str) -> None:
    """Work in the driver's folder, so relative paths resolve as they did there. Ray gives each driver its own
    worker processes, so this changes nothing for anyone else; where the folder is missing (a node without the
    shared file system), relative paths fail item by item with the path that was not found."""
    try:
        os.chdir(cwd)
    except OSError:
        pass


def _node_fact(result: Result) -> Result:
    import ray

    result.facts["node"] = ray.get_runtime_context().get_node_id()
    return result


def _process_task(handle: list[Any], item: Item) -> Result:
    return _node_fact(process_item(_worker_job(handle), item, WriteGate()))


@dataclasses.dataclass
class _Failure:
    """Why an item failed before its save task, which turns it into the item's failed Result."""

    error: str


def _load_task(handle: list[Any], item: Item) -> Any:
    """The loaded item, or a :class:`_Failure` that the later stages pass along."""
    try:
        return _worker_job(handle).load(item)
    except FATAL:
        raise
    except Exception as error:
        return _Failure(describe(error))


def _save_task(handle: list[Any], item: Item, pair: Any) -> Result:
    if isinstance(pair, _Failure):
        return _node_fact(failed(item, pair.error))
    computed, loaded = pair
    return _node_fact(save_or_fail(_worker_job(handle), item, loaded, computed, WriteGate()))


class _ModelActor:
    """Holds the job, hence one model, for the life of a run."""

    def __init__(self, handle: list[Any]) -> None:
        import ray

        # The model's intra-op threads: every core of this machine, as in the local engine (Ray gives an actor
        # one). Set before the job (hence torch) is loaded here, since torch reads it once. The number matters
        # beyond speed: a CNN's sums run in another order on another number of threads, and its masks must be
        # the bytes the local engine writes on the same machine.
        os.environ["OMP_NUM_THREADS"] = str(cpu_count())
        _, ref, cwd = handle
        _enter(cwd)
        self.job = ray.get(ref)

    def placement(self) -> tuple[int, str]:
        """The job's batch size as resolved on this machine (its device), and this actor's node."""
        import ray

        return max(1, self.job.batch_size), ray.get_runtime_context().get_node_id()

    def compute(self, *outcomes: Any) -> tuple[Any, ...]:
        """Per input: ``(computed, loaded)`` for the save task, or a :class:`_Failure`; then a done marker.

        The loaded item goes back with its result because the job's compute may note things in it (timings).
        """
        answers: list[Any] = list(outcomes)
        good = [index for index, loaded in enumerate(outcomes) if not isinstance(loaded, _Failure)]
        for index, value in enumerate(compute_isolated(self.job.compute, [outcomes[i] for i in good])):
            position = good[index]
            failure = isinstance(value, BaseException)
            answers[position] = _Failure(describe(value)) if failure else (value, outcomes[position])
        return (*answers, True)


__all__ = ["INSTALL_HINT", "RayExecutor", "import_ray"]
