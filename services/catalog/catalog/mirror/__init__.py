"""The public library mirrored from upstream registries with skopeo: sources, selection, syncs."""
