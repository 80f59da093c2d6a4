"""Whole-photo face restoration: detect, align to the FFHQ template, restore, paste back."""
