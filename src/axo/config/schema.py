"""JSON schema of the flat YAML file, built from the area models so docs live in one place."""

from axo.config.root import AREAS


def flat_schema() -> dict:
    properties, required, defs = {}, [], {}
    for model in AREAS.values():
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        properties.update(schema.get("properties", {}))
        required += schema.get("required", [])
        defs.update(schema.get("$defs", {}))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "axo config",
        "description": "axo training config (Axolotl's key names).",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        "$defs": defs,
    }
