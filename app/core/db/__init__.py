"""Database: SQLAlchemy tables and sessions (PostgreSQL in server mode, SQLite embedded)."""
