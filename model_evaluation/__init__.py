"""The seed project's evaluation entry points, kept working as thin wrappers over lorafair."""
