from django.urls import path

from failures import views

app_name = "failures"

urlpatterns = [
    path("catalogue/", views.catalogue, name="catalogue"),
]
