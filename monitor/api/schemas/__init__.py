"""Response shapes of the center's routes (pydantic), one module per group of resources, for /docs."""
