"""Finding passages: a question parsed and checked, searched dense, by keyword or both, and fused."""
