# Every mmattn config imports mmattn, so the library's own tools (`mim train mmdet CONFIG`,
# mmdet/tools/train.py) find the mmattn modules and apply its compatibility fixes.
custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)
