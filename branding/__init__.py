"""Brands: how each partner's portal, pages and emails look."""
