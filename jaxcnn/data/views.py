PROTOCOLS = ("center", "ten_crop", "multi_scale", "crops144")
