"""The checkpoint formats the reader knows, one module each, dispatched by content in `reader/__init__.py`:
torch.save zip archives (`torchzip`, over `zipview`/`zipopen`), the legacy tar (`tarformat`) and pickle
(`legacy`, `pickles`) formats, safetensors, torch.distributed.checkpoint folders (`dcp`), sharded-checkpoint
indexes (`index`) and numpy files (`numpyfile`)."""
