"""Colour spaces (sRGB, CIE LAB) in keras.ops."""
