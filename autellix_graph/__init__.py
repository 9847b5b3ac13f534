"""Autellix LangGraph middleware."""
