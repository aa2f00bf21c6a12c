"""The machine the figures come from: CPU, cores, memory and the versions of everything measured."""

from __future__ import annotations

import importlib
import os
import platform
from typing import Any

from tf_histeq.bench.workloads import GIB


def mem_available() -> float:
    """Bytes of memory available (`MemAvailable` of /proc/meminfo; 8 GiB where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024.0
    except OSError:
        pass
    return 8.0 * GIB


def machine_info(device: str) -> dict[str, Any]:
    """CPU model, cores and the versions of everything measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu_model": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_available_gib": round(mem_available() / GIB, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "device": device,
    }
    for key, module in (
        ("tf_histeq", "tf_histeq"),
        ("tensorflow", "tensorflow"),
        ("keras", "keras"),
        ("numpy", "numpy"),
        ("opencv", "cv2"),
        ("pillow", "PIL"),
        ("scikit_image", "skimage"),
    ):
        try:
            info[key] = importlib.import_module(module).__version__
        except ImportError:
            info[key] = None
    if device.startswith("/GPU"):
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
        info["gpu"] = details.get("device_name", gpus[0].name if gpus else None)
    return info
