from branding.selectors import brand_for_request


def brand(request):
    return {"brand": brand_for_request(request)}
