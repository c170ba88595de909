; NanoClaw for Windows: a per-user installer (no administrator rights), compiled by installers/windows/build.py with
; Inno Setup 6 (`iscc`). The app lands in %LOCALAPPDATA%\Programs\NanoClaw with a Start-menu entry; "Start NanoClaw
; when I log in" is the same Run-key value the app's own switch in Settings writes (nanoclaw_app/desktop/autostart.py),
; and uninstalling keeps the user's data (%LOCALAPPDATA%\nanoclaw) unless they tick the box to delete it.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceExe
  #define SourceExe "..\..\dist\nanoclaw-window.exe"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\windows\nanoclaw.ico"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
AppId={{5B0F2C1E-7A43-4E8B-9C6D-2F1A7E3B8D40}
AppName=NanoClaw
AppVersion={#AppVersion}
AppVerName=NanoClaw {#AppVersion}
AppPublisher=NanoClaw
DefaultDirName={autopf}\NanoClaw
DisableProgramGroupPage=yes
DisableDirPage=auto
; Per user: {autopf} is %LOCALAPPDATA%\Programs, {autoprograms} the user's own Start menu, and no UAC prompt.
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#OutputDir}
OutputBaseFilename=NanoClaw-{#AppVersion}-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\NanoClaw.exe
UninstallDisplayName=NanoClaw
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; A running NanoClaw (it stays in the tray with its window closed) is asked to close before its files are replaced.
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[CustomMessages]
english.LoginGroup=When you log in:
english.StartAtLogin=Start NanoClaw when I log in (it answers your phone in the background)
english.UninstallTitle=Uninstall NanoClaw
english.UninstallKeeps=NanoClaw will be removed from this computer. Your chats, agents and settings stay, so installing NanoClaw again finds everything as it was.
english.UninstallRemoveData=Also delete my NanoClaw data (chats, agents, settings and logs)
english.UninstallButton=Uninstall

[Tasks]
Name: "startatlogin"; Description: "{cm:StartAtLogin}"; GroupDescription: "{cm:LoginGroup}"
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceExe}"; DestDir: "{app}"; DestName: "NanoClaw.exe"; Flags: ignoreversion

[Icons]
Name: "{autoprograms}\NanoClaw"; Filename: "{app}\NanoClaw.exe"
Name: "{autodesktop}\NanoClaw"; Filename: "{app}\NanoClaw.exe"; Tasks: desktopicon

[Registry]
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "NanoClaw"; ValueData: """{app}\NanoClaw.exe"" --background"; Tasks: startatlogin
; Whoever wrote it (this installer or the switch in NanoClaw's Settings), uninstalling removes the login start.
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: none; ValueName: "NanoClaw"; Flags: uninsdeletevalue

[Run]
Filename: "{app}\NanoClaw.exe"; Description: "{cm:LaunchProgram,NanoClaw}"; Flags: nowait postinstall skipifsilent

[UninstallRun]
; Quit a running NanoClaw first (politely, then for sure) so that its program file can be removed.
Filename: "{sys}\taskkill.exe"; Parameters: "/IM NanoClaw.exe /T"; Flags: runhidden; RunOnceId: "CloseNanoClaw"
Filename: "{sys}\taskkill.exe"; Parameters: "/IM NanoClaw.exe /T /F"; Flags: runhidden; RunOnceId: "StopNanoClaw"

[Code]
var
  RemoveData: Boolean;

{ Ask before uninstalling: the data stays unless the box is ticked. A silent uninstall (an upgrade tool) keeps it. }
function InitializeUninstall(): Boolean;
var
  Form: TSetupForm;
  Info: TNewStaticText;
  Box: TNewCheckBox;
  OkButton, CancelButton: TNewButton;
begin
  Result := True;
  RemoveData := False;
  if UninstallSilent() then
    Exit;
  Form := CreateCustomForm();
  try
    Form.Caption := CustomMessage('UninstallTitle');
    Form.ClientWidth := ScaleX(420);
    Form.ClientHeight := ScaleY(170);

    Info := TNewStaticText.Create(Form);
    Info.Parent := Form;
    Info.Left := ScaleX(16);
    Info.Top := ScaleY(16);
    Info.Width := Form.ClientWidth - ScaleX(32);
    Info.Height := ScaleY(56);
    Info.AutoSize := False;
    Info.WordWrap := True;
    Info.Caption := CustomMessage('UninstallKeeps');

    Box := TNewCheckBox.Create(Form);
    Box.Parent := Form;
    Box.Left := ScaleX(16);
    Box.Top := ScaleY(84);
    Box.Width := Form.ClientWidth - ScaleX(32);
    Box.Height := ScaleY(20);
    Box.Caption := CustomMessage('UninstallRemoveData');
    Box.Checked := False;

    OkButton := TNewButton.Create(Form);
    OkButton.Parent := Form;
    OkButton.Width := ScaleX(96);
    OkButton.Height := ScaleY(26);
    OkButton.Left := Form.ClientWidth - ScaleX(16 + 96 + 8 + 96);
    OkButton.Top := Form.ClientHeight - ScaleY(26 + 16);
    OkButton.Caption := CustomMessage('UninstallButton');
    OkButton.ModalResult := mrOk;
    OkButton.Default := True;

    CancelButton := TNewButton.Create(Form);
    CancelButton.Parent := Form;
    CancelButton.Width := ScaleX(96);
    CancelButton.Height := ScaleY(26);
    CancelButton.Left := Form.ClientWidth - ScaleX(16 + 96);
    CancelButton.Top := OkButton.Top;
    CancelButton.Caption := SetupMessage(msgButtonCancel);
    CancelButton.ModalResult := mrCancel;
    CancelButton.Cancel := True;

    Form.ActiveControl := OkButton;
    if Form.ShowModal() = mrOk then
      RemoveData := Box.Checked
    else
      Result := False;
  finally
    Form.Free();
  end;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  { The app keeps its data and settings in %LOCALAPPDATA%\nanoclaw (platformdirs' folder for "nanoclaw"). }
  if (CurUninstallStep = usPostUninstall) and RemoveData then
    DelTree(ExpandConstant('{localappdata}\nanoclaw'), True, True, True);
end;
