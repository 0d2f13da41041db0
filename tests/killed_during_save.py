"""train.py, killed in the middle of a checkpoint's save: run as `python killed_during_save.py
TRAIN_ARGS` (or under torchrun) with KILL_AT_SAVE=N in the environment.

torch.save writes half of the N-th `optimizer.bin` and then SIGKILLs its own process, which is
what a kill during a save leaves behind; the checkpointing code itself is unchanged.
"""

import io
import os
import signal
import sys

import torch

import train

real_save, optimizer_saves = torch.save, []


def save(obj, f, *args, **kwargs):
    if str(f).endswith("optimizer.bin"):
        optimizer_saves.append(f)
        if len(optimizer_saves) == int(os.environ["KILL_AT_SAVE"]):
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            with open(f, "wb") as file:
                file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)


torch.save = save
sys.exit(train.main(sys.argv[1:]))
