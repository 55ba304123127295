"""The published CMR-CLIP model (Nakashima et al.) as a second study encoder.

``load_checkpoint`` builds the network from :mod:`.config` and loads the
released ``pytorch_model.bin`` strictly; ``CMRCLIPEncoder`` plugs it into
indexing and search through the ``StudyEncoder`` interface.
"""
