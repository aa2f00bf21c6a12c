"""A tf.data service on localhost, in the test process, for the tests that hand work to one."""

from __future__ import annotations

import tensorflow as tf

# Servers are not stopped but kept until the process ends: `WorkerServer._stop()` waits for the
# worker's tasks while holding the GIL, which froze the interpreter for up to 14 s here (at random),
# whereas servers left running cost nothing at exit.
_RETIRED: list = []


class LocalService:
    """A tf.data service dispatcher with `workers` workers on localhost, in this process."""

    def __init__(self, workers: int = 1):
        svc = tf.data.experimental.service
        self.dispatcher = svc.DispatchServer(svc.DispatcherConfig(port=0))
        self.target = self.dispatcher.target  # grpc://localhost:PORT
        self.workers = []
        for _ in range(workers):
            self.add_worker()

    def add_worker(self):
        svc = tf.data.experimental.service
        address = self.target.split("://", 1)[1]
        self.workers.append(svc.WorkerServer(svc.WorkerConfig(dispatcher_address=address, port=0)))

    def retire(self):
        """Keep the servers running until the process ends (see `_RETIRED`)."""
        _RETIRED.append(self)


def local_service(workers: int = 1) -> str:
    """Start a dispatcher with `workers` workers, kept until the process ends; return its target URL."""
    service = LocalService(workers)
    service.retire()
    return service.target
