"""sigaudit Beam transforms: one composite PTransform per stage, ModelHandlers and report schemas."""
