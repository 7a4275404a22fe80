# Integration keys and their rate windows moved here from the clinical app. Only Django's
# state moves; the tables keep their names (clinical_apikey, clinical_ratelimitwindow) and
# not a row is copied.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("clinical", "0005_data_at_rest_encrypted"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=100, unique=True)),
                        ("prefix", models.CharField(max_length=16, unique=True)),
                        ("key_hash", models.CharField(max_length=64)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        ("scopes", models.JSONField(blank=True, default=list)),
                        ("expires_at", models.DateTimeField(blank=True, null=True)),
                        ("rate_limit_per_min", models.PositiveIntegerField(blank=True, null=True)),
                        ("callback_url", models.URLField(blank=True, max_length=500)),
                        ("user", models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="api_key", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={"db_table": "clinical_apikey"},
                ),
                migrations.CreateModel(
                    name="RateLimitWindow",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("window_start", models.DateTimeField()),
                        ("count", models.PositiveIntegerField(default=0)),
                        ("api_key", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.apikey")),
                    ],
                    options={"db_table": "clinical_ratelimitwindow"},
                ),
                migrations.AddConstraint(
                    model_name="ratelimitwindow",
                    constraint=models.UniqueConstraint(fields=("api_key", "window_start"), name="rate_limit_window_per_key"),
                ),
            ],
            database_operations=[],
        ),
    ]
