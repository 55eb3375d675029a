"""titlemap.maps — styles, web maps and print layouts; uses geo, never api."""
